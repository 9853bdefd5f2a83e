"""The words and attribute values a text-conditioned model knows, built from the shop's own catalogue.

No pretrained language model: the vocabulary is the words of the training products' names and
descriptions, and their meaning is learned with the generator (see ``encoder.ConditionEncoder``). It
travels inside the checkpoint as a plain dict, because embedding rows are indexed by it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

# Attributes a shop's catalogue commonly has; a product lacking one is conditioned on "not given".
ATTRIBUTE_KEYS = ("colour", "material", "pattern")
# Names and descriptions longer than this keep their first words: titles put the product first.
MAX_WORDS = 16
# A word must occur this often in the training texts to get its own embedding; rarer words would be
# learned from one or two photos and mostly memorise them.
MIN_WORD_COUNT = 2
PAD = 0
_WORD = re.compile(r"[^\W\d_]+")


def tokenize(text: str | None) -> list[str]:
    """Lower-case words of letters (digits, sizes and punctuation carry no look)."""
    return _WORD.findall((text or "").lower())


def word_forms(word: str) -> list[str]:
    """The word and its possible singulars ("dresses" -> dresses, dresse, dress): plurals mean the same garment."""
    forms = [word]
    if word.endswith("s") and len(word) > 3:
        forms.append(word[:-1])
        if word.endswith("es"):
            forms.append(word[:-2])
    return forms


def normalise_value(value: Any) -> str:
    return " ".join(str(value).lower().split()) if value is not None else ""


@dataclass
class ConditionVocab:
    """``attributes[key]`` lists the known values of each attribute (id = 1 + position, 0 = not given);
    ``words`` the known words (id = 1 + position, 0 = padding)."""

    attributes: dict[str, list[str]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.attributes = {key: list(self.attributes.get(key, [])) for key in ATTRIBUTE_KEYS}
        self.words = list(self.words)
        self._word_ids = {word: i + 1 for i, word in enumerate(self.words)}
        self._value_ids = {key: {v: i + 1 for i, v in enumerate(values)} for key, values in self.attributes.items()}

    @classmethod
    def build(
        cls, attributes: Iterable[Mapping[str, Any] | None], texts: Iterable[str | None], min_count: int = MIN_WORD_COUNT
    ) -> ConditionVocab:
        """The vocabulary of a training set: every attribute value seen, every word seen ``min_count`` times."""
        values: dict[str, set[str]] = {key: set() for key in ATTRIBUTE_KEYS}
        for attrs in attributes:
            for key in ATTRIBUTE_KEYS:
                value = normalise_value((attrs or {}).get(key))
                if value:
                    values[key].add(value)
        counts = Counter(word for text in texts for word in tokenize(text))
        words = sorted(word for word, n in counts.items() if n >= min_count)
        return cls(attributes={key: sorted(found) for key, found in values.items()}, words=words)

    @property
    def attribute_sizes(self) -> list[int]:
        """Embedding rows per attribute, "not given" included."""
        return [len(self.attributes[key]) + 1 for key in ATTRIBUTE_KEYS]

    @property
    def vocab_size(self) -> int:
        return len(self.words) + 1

    def _word_id(self, word: str) -> int:
        return next((self._word_ids[form] for form in word_forms(word) if form in self._word_ids), 0)

    def attribute_ids(self, attributes: Sequence[Mapping[str, Any] | None]) -> torch.Tensor:
        """N x len(ATTRIBUTE_KEYS) ids; missing or unknown values are 0 ("not given")."""
        rows = [
            [self._value_ids[key].get(normalise_value((attrs or {}).get(key)), 0) for key in ATTRIBUTE_KEYS]
            for attrs in attributes
        ]
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(ATTRIBUTE_KEYS))

    def token_ids(self, texts: Sequence[str | None]) -> torch.Tensor:
        """N x MAX_WORDS ids of the known words of each text, padded with 0; unknown words are left out."""
        out = torch.zeros(len(texts), MAX_WORDS, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [i for i in (self._word_id(w) for w in tokenize(text)) if i][:MAX_WORDS]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def unknown(self, attributes: Mapping[str, Any] | None, text: str | None) -> list[str]:
        """What of a product description the model cannot use, for a warning: ["material=leather", "word 'x'"]."""
        ignored = [
            f"{key}={normalise_value(value)}"
            for key, value in (attributes or {}).items()
            if key not in ATTRIBUTE_KEYS or (normalise_value(value) and normalise_value(value) not in self._value_ids[key])
        ]
        ignored += [f"word {w!r}" for w in dict.fromkeys(tokenize(text)) if not self._word_id(w)]
        return ignored

    def to_dict(self) -> dict[str, Any]:
        return {"attributes": {key: list(values) for key, values in self.attributes.items()}, "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConditionVocab:
        if not isinstance(data, Mapping) or set(data) - {"attributes", "words"}:
            raise ValueError("vocab must be a dict with 'attributes' and 'words'")
        attributes = data.get("attributes", {})
        if set(attributes) - set(ATTRIBUTE_KEYS):
            raise ValueError(f"vocab attributes must be among {ATTRIBUTE_KEYS}, got {sorted(attributes)}")
        return cls(attributes=dict(attributes), words=list(data.get("words", [])))
