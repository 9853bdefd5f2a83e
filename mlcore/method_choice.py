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

    The model wins only by beating every other score, ``unchanged`` included; otherwise ties go to the untouched
    photo, then to the tools in their order, as the safer and cheaper. A task that must change the photo (an
    enlargement, a hole to fill) cannot stay unchanged: its ``unchanged`` score, when given, only sets the bar
    the model must clear. Returns {"method": "model" | "tool" | "unchanged", "tool" (a tool's name), "psnr" (the scores),
    "model_margin_db" (the model over the best other), "gain_db" (the winner over ``unchanged``, when scored)}."""
    rivals = {name: value for name, value in scores.items() if name != MODEL}
    if MODEL in scores and (not rivals or scores[MODEL] > max(rivals.values())):
        best = MODEL
    else:
        # Ties go to the earlier: the untouched photo (where it may stay), then the tools in their order.
        order = [name for name in rivals if name != UNCHANGED]
        if may_stay_unchanged and UNCHANGED in rivals or not order:
            order = [UNCHANGED, *order]
        best = max(order, key=lambda name: (scores[name], -order.index(name)))
    choice = {"method": best if best in (UNCHANGED, MODEL) else "tool", "psnr": {k: round(v, 3) for k, v in scores.items()},
              "model_margin_db": round(scores[MODEL] - max(rivals.values()), 3)}
    if UNCHANGED in scores:
        choice["gain_db"] = round(scores[best] - scores[UNCHANGED], 3)
    if choice["method"] == "tool":
        choice["tool"] = best
    return choice


def unmeasured(tool: str) -> dict:
    """The choice of a task no validation measured: ``tool`` runs (the classical default)."""
    return {"method": "tool", "tool": tool, "measured": False}


def step(task: str, choice: dict) -> dict:
    """What a result records of one task that ran by ``choice``: the task, the method, the tool, and whether
    the choice was measured on the shop's photos."""
    return {"task": task, "method": choice["method"], **({"tool": choice["tool"]} if choice["method"] == "tool" else {}),
            "measured": choice.get("measured", True)}
