"""The "tcgan" kind and its conditioning: vocabulary, condition rows, condition dropout, sampling from text,
services. What every kind shares is in test_model_contract.py."""
import io

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from PIL import Image

from mlcore.conditioning.colour import dominant_colour_name
from mlcore.conditioning.encoder import ROW_WIDTH
from mlcore.conditioning.vocab import ConditionVocab, tokenize
from mlcore.registry import get_kind
from mlcore.textgan.config import TextGANConfig

from .synthetic import pixels

pytestmark = pytest.mark.slow

CLASSES = ["hat", "skirt"]
COLOURS = {"red": (210, 30, 40), "blue": (40, 60, 200)}


def catalogue(count=8):
    """Flat-coloured garments with titles and colour attributes, like a shop's products."""
    images, categories, attributes, texts = [], [], [], []
    for i in range(count):
        colour, category = list(COLOURS)[i % 2], CLASSES[(i // 2) % 2]
        image = torch.full((3, 64, 64), 240, dtype=torch.uint8)
        image[:, 16:48, 16:48] = torch.tensor(COLOURS[colour], dtype=torch.uint8)[:, None, None]
        images.append(image)
        categories.append(category)
        attributes.append({"colour": colour} if i % 3 else {})
        texts.append(f"{colour.title()} {category}. A {colour} {category} from our shop.")
    return torch.stack(images), categories, attributes, texts


def tiny_config(**overrides):
    _, categories, attributes, texts = catalogue()
    return TextGANConfig.for_training(
        classes=CLASSES, image_size=64, attributes=attributes, texts=texts, g_width=4, d_width=4, **overrides
    )


def trained(steps=3, seed=0):
    images, categories, attributes, texts = catalogue()
    config = tiny_config()
    spec = get_kind("tcgan")
    trainer = spec.trainer(config, images, config.condition_ids(categories, attributes, texts), batch_size=4, seed=seed)
    summary = trainer.fit(steps)
    return trainer, summary


def sampler_of(trainer):
    buffer = io.BytesIO()
    trainer.save(buffer)
    buffer.seek(0)
    return get_kind("tcgan").sampler.from_checkpoint(buffer)



# ---- vocabulary and condition rows -------------------------------------------------------------------------

def test_tokenize_keeps_lower_case_words_of_letters():
    assert tokenize("Red LEATHER skirt, size 38 (slim-fit)!") == ["red", "leather", "skirt", "size", "slim", "fit"]
    assert tokenize(None) == [] and tokenize("") == []


def test_vocab_is_built_from_the_catalogue_and_round_trips():
    vocab = ConditionVocab.build(
        [{"colour": "Red"}, {"colour": "red", "material": "Wool"}, {}, None], ["red skirt", "red hat", "blue hat"]
    )
    assert vocab.attributes == {"colour": ["red"], "material": ["wool"], "pattern": []}
    assert vocab.words == ["hat", "red"]  # "skirt" and "blue" occur once: below MIN_WORD_COUNT
    assert ConditionVocab.from_dict(vocab.to_dict()) == vocab
    assert vocab.attribute_sizes == [2, 2, 1] and vocab.vocab_size == 3
    with pytest.raises(ValueError, match="attributes must be among"):
        ConditionVocab.from_dict({"attributes": {"size": ["m"]}, "words": []})


def test_ids_ignore_unknown_words_and_values_and_read_plurals():
    vocab = ConditionVocab(attributes={"colour": ["blue", "red"]}, words=["hat", "red", "skirt"])
    tokens = vocab.token_ids(["Red leather skirts", "", "zzz"])
    assert tokens.shape == (3, 16)
    assert tokens[0, :3].tolist() == [2, 3, 0] and tokens[1:].abs().sum() == 0
    assert vocab.attribute_ids([{"colour": "RED"}, {"colour": "magenta"}, None]).tolist() == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert vocab.unknown({"colour": "magenta", "size": "m"}, "red leather skirt") == [
        "colour=magenta", "size=m", "word 'leather'"
    ]


def test_condition_rows_pack_category_attributes_and_text():
    config = tiny_config()
    rows = config.condition_ids(["skirt", None], [{"colour": "red"}, {}], ["red skirt", None])
    assert rows.shape == (2, ROW_WIDTH) and rows.dtype == torch.long
    assert rows[0, 0] == 1 and rows[1, 0] == len(CLASSES)  # not given -> the extra class row
    assert rows[0, 1] == config.condition_vocab.attribute_ids([{"colour": "red"}])[0, 0] > 0
    assert rows[1, 1:].abs().sum() == 0
    with pytest.raises(KeyError, match="unknown class 'coat'"):
        config.condition_ids(["coat"])
    config.check_condition_ids(rows, 2)
    bad = rows.clone()
    bad[0, -1] = 10_000
    with pytest.raises(ValueError, match="outside the vocabulary"):
        config.check_condition_ids(bad, 2)
    with pytest.raises(ValueError, match="condition rows"):
        config.check_condition_ids(torch.tensor([0, 1]), 2)


def test_config_round_trips_with_its_vocab_and_validates():
    config = tiny_config()
    again = TextGANConfig.from_dict(config.to_dict())
    assert again == config and again.condition_vocab.words == config.condition_vocab.words
    with pytest.raises(ValueError, match="condition_drop"):
        tiny_config(condition_drop=1.0)
    with pytest.raises(ValueError, match="kind must be 'tcgan'"):
        TextGANConfig(classes=CLASSES, kind="cgan")


def test_dominant_colour_is_read_off_the_garment_not_the_backdrop():
    image = Image.new("RGB", (80, 80), (245, 245, 245))
    image.paste((200, 25, 35), (20, 20, 60, 60))
    assert dominant_colour_name(image) == "red"
    image.paste((40, 85, 180), (20, 20, 60, 60))
    assert dominant_colour_name(image) == "blue"


# ---- training and sampling ---------------------------------------------------------------------------------

def test_condition_dropout_hides_parts_with_the_trainer_rng():
    trainer, _ = trained(steps=0)
    labels = trainer.objective.data.labels
    rows = labels.repeat(50, 1)
    dropped = trainer.objective.condition_batch(rows, trainer.rng)
    hidden_class = (dropped[:, 0] == len(CLASSES)).float().mean()
    hidden_text = (dropped[:, 4:].sum(dim=1) == 0).float().mean()
    assert 0.15 < hidden_class < 0.35 and 0.15 < hidden_text < 0.35
    assert torch.equal(rows, labels.repeat(50, 1))  # the dataset itself is untouched


def test_text_changes_the_image_and_unknown_words_do_not():
    sampler = sampler_of(trained(steps=2)[0])
    red = pixels(sampler.generate_for([5, 6], text="red skirt"))
    assert np.array_equal(red, pixels(sampler.generate_for([5, 6], text="red zzz skirt")))
    assert not np.array_equal(red, pixels(sampler.generate_for([5, 6], text="blue skirt")))
    assert not np.array_equal(red, pixels(sampler.generate_for([5, 6], text="red skirt", attributes={"colour": "red"})))
    single = pixels(sampler.generate_for([6], category="hat", text="red hat"))
    torch.testing.assert_close(
        torch.tensor(single[0]), torch.tensor(pixels(sampler.generate_for([5, 6], category="hat", text="red hat"))[1]),
        atol=1, rtol=0,
    )
    assert sampler.unknown({"material": "leather"}, "red leather skirt") == ["material=leather", "word 'leather'"]
    scores = sampler.score(sampler.generate_seeds("hat", [1, 2]))
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_128_px_config_trains_a_step():
    images, categories, attributes, texts = catalogue()
    big = torch.nn.functional.interpolate(images.float(), size=128).to(torch.uint8)
    config = TextGANConfig.for_training(classes=CLASSES, image_size=128, attributes=attributes, texts=texts, g_width=4, d_width=4)
    trainer = get_kind("tcgan").trainer(config, big, config.condition_ids(categories, attributes, texts), batch_size=2)
    trainer.fit(1)
    assert sampler_of(trainer).generate_for([0], text="red hat")[0].size == (128, 128)


# ---- through the services and commands ---------------------------------------------------------------------

def test_tcgan_trains_on_product_text_and_generates_from_each_products_own_description(make_products, tmp_path):
    from imagegen import services
    from imagegen.models import GeneratedImage, Job
    from imagegen.services.generation import request_generation
    from imagegen.services.training import request_training

    products = make_products({"dress": 5, "hat": 4})
    products[0].attributes = {"colour": "green", "material": "wool"}
    products[0].description = "A green wool dress."
    products[0].save()
    job = services.execute(request_training([p.pk for p in products], kind="tcgan", steps=2, batch_size=4, device="cpu").pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    version = job.model_version
    vocab = version.config["vocab"]
    assert "wool" in vocab["attributes"]["material"] and "dress" in vocab["words"]
    # Products without a colour attribute got the one read off their photo.
    assert len(vocab["attributes"]["colour"]) >= 2

    generated = services.execute(request_generation(products[0], count=2, seed=3, kind="tcgan").pk)
    assert generated.state == Job.State.SUCCEEDED, generated.error
    row = GeneratedImage.objects.filter(job=generated).first()
    assert row.parameters["attributes"] == {"colour": "green", "material": "wool"}
    assert row.parameters["text"].startswith(products[0].name)

    out = tmp_path / "samples"
    call_command("generate_samples", "--model-version", str(version.pk), "--count", "2", "--out", str(out),
                 "--text", "green wool dresses", "--attributes", '{"material": "wool"}')
    assert sorted(p.name for p in out.iterdir()) == ["dress_0.png", "dress_1.png"]
    call_command("generate_samples", "--model-version", str(version.pk), "--count", "1", "--out", str(out / "any"),
                 "--text", "green wool")
    assert [p.name for p in (out / "any").iterdir()] == ["uncategorised_0.png"]


def test_generate_samples_refuses_text_for_class_only_kinds_and_bad_json(trained_version, tmp_path):
    tmp_path = tmp_path / "out"
    with pytest.raises(CommandError, match="conditions on the category alone"):
        call_command("generate_samples", "--model-version", str(trained_version.pk), "--count", "1",
                     "--out", str(tmp_path), "--text", "red dress")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("generate_samples", "--model-version", str(trained_version.pk), "--count", "1",
                     "--out", str(tmp_path), "--attributes", "{colour: red")
    assert not tmp_path.exists()
