"""Which method a photo task runs: the trained model, a classical tool, or nothing, by held-out scores.

The photo models' validations (restoration, inpainting) score every contender of a task on the shop's held-out
photos; ``choose`` turns the mean scores into the task's choice, which the operation runs. The model is chosen
only when it beats everything else, so it never reaches a photo where a classical tool, or leaving the photo
alone, did better.
"""

from __future__ import annotations

UNCHANGED = "unchanged"
MODEL = "model"


def choose(scores: dict[str, float], *, may_stay_unchanged: bool = True) -> dict:
    """The winner of one task's mean scores (higher is better; keys ``unchanged``, ``model`` and tool names).

    Ties go to the untouched photo, then to a tool, as the safer and cheaper. A task that must change the photo
    (an enlargement, a hole to fill) cannot stay unchanged: its ``unchanged`` score, when given, only sets the
    bar. Returns {"method": "model" | "tool" | "unchanged", "tool" (a tool's name), "psnr" (the scores),
    "model_margin_db" (the model over the best other), "gain_db" (the winner over ``unchanged``, when scored)}."""
    others = [name for name in scores if name not in (UNCHANGED, MODEL)]
    order = ([UNCHANGED] if may_stay_unchanged and UNCHANGED in scores else []) + others + [MODEL]
    best = max(order, key=lambda name: (scores[name], -order.index(name)))
    rivals = [scores[name] for name in scores if name != MODEL]
    choice = {"method": best if best in (UNCHANGED, MODEL) else "tool", "psnr": {k: round(v, 3) for k, v in scores.items()},
              "model_margin_db": round(scores[MODEL] - max(rivals), 3)}
    if UNCHANGED in scores:
        choice["gain_db"] = round(scores[best] - scores[UNCHANGED], 3)
    if choice["method"] == "tool":
        choice["tool"] = best
    return choice
