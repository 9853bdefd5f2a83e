"""Enhance's named tasks, and running them with what won each on held-out photos.

Each task is measured (``validation``) on the benchmark degradations it undoes, for the trained model, each of
its classical tools and the untouched photo; the winner is the task's *choice*, stored with the model version:
``{"method": "model" | "tool" | "unchanged", "tool": name}``. ``enhance`` runs the asked tasks in ``ORDER``
with their choices, so no task makes a photo worse than its best measured alternative.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from ..method_choice import step, unmeasured
from ..photos import has_alpha
from . import classical
from .classical import Tool
from .sampler import MAX_OUTPUT_PIXELS


@dataclass(frozen=True)
class Task:
    name: str
    degradations: tuple[str, ...]  # the benchmark degradations (degrade.NAMED) it is measured on
    tools: tuple[Tool, ...]  # its classical tools
    scale: int = 1  # an enlargement: 2 or 4

    @property
    def enlarges(self) -> bool:
        return self.scale > 1


TASKS: dict[str, Task] = {
    task.name: task for task in (
        Task("exposure", ("underexposed", "overexposed"), (classical.AUTOCONTRAST,)),
        Task("colour", ("colourcast",), (classical.GREY_EDGE, classical.CHANNEL_STRETCH, classical.WHITE_PATCH)),
        Task("denoise", ("noise15", "noise25"), (classical.NLM,)),
        Task("jpeg", ("jpeg20",), (classical.JPEG_NLM,)),
        Task("deblur", ("blur",), (classical.UNSHARP_MASK,)),
        Task("upscale2", ("downscale2",), (classical.LANCZOS, classical.BICUBIC), scale=2),
        Task("upscale4", ("downscale4",), (classical.LANCZOS, classical.BICUBIC), scale=4),
    )
}
# Tone first (the denoiser's and sharpener's strengths assume a normally exposed photo), enlargement last.
ORDER = ("exposure", "colour", "denoise", "jpeg", "deblur", "upscale2", "upscale4")
CORRECTIONS = tuple(name for name in ORDER if not TASKS[name].enlarges)
UPSCALE_TASK = {2: "upscale2", 4: "upscale4"}


def default_choice(task: str) -> dict:
    """What runs without a validated model: the task's first classical tool (the benchmark's best on the dataset)."""
    return unmeasured(TASKS[task].tools[0].name)


def tool_named(task: str, name: str) -> Tool:
    for tool in TASKS[task].tools:
        if tool.name == name:
            return tool
    raise KeyError(f"task {task!r} has no tool {name!r}; it has {[t.name for t in TASKS[task].tools]}")


def enhance(photo: Image.Image, tasks: list[str], *, upscale: int = 1, choices: dict | None = None,
            restorer=None) -> tuple[Image.Image, list[dict]]:
    """``photo`` with ``tasks`` (names from ``CORRECTIONS``) done and enlarged ``upscale`` times, each by its
    choice (``choices[task]``, else ``default_choice``); and the steps, one per task: the task, the method that
    ran and, for a tool, its name. The model runs once for the corrections that chose it (at the first of them)
    and, when the enlargement chose it, once more at the end to enlarge: every correction runs at the photo's
    own size, as it was measured. An image with transparency keeps its alpha channel (enlarged bicubically). A
    ValueError for unknown tasks, or an enlargement over ``MAX_OUTPUT_PIXELS``."""
    unknown = [t for t in tasks if t not in CORRECTIONS]
    if unknown:
        raise ValueError(f"unknown Enhance task(s) {unknown}; known: {list(CORRECTIONS)}")
    wanted = [t for t in CORRECTIONS if t in tasks] + ([UPSCALE_TASK[upscale]] if upscale > 1 else [])
    if not wanted:
        raise ValueError("no task to run")
    if photo.width * photo.height * upscale * upscale > MAX_OUTPUT_PIXELS:
        raise ValueError(f"{photo.width} x {photo.height} enlarged {upscale}x is over "
                         f"{MAX_OUTPUT_PIXELS // 1_000_000} megapixels")
    plan = [(task, (choices or {}).get(task) or default_choice(task)) for task in wanted]
    if any(choice["method"] == "model" for _, choice in plan) and restorer is None:
        raise ValueError("a task chose the model but no restorer was given")
    alpha = photo.convert("RGBA").getchannel("A") if has_alpha(photo) else None
    image = photo.convert("RGB")
    corrected_by_model, steps = False, []
    for task, choice in plan:
        method = choice["method"]
        if method == "model":
            if TASKS[task].enlarges:
                image = restorer.enhance(image, upscale=TASKS[task].scale)
            elif not corrected_by_model:
                image = restorer.enhance(image, upscale=1)
                corrected_by_model = True
        elif method == "tool":
            image = tool_named(task, choice["tool"]).apply(image, TASKS[task].scale)
        elif method == "unchanged":
            if TASKS[task].enlarges:  # an enlargement must enlarge: plain bicubic, as the measurement did
                image = classical.BICUBIC.apply(image, TASKS[task].scale)
        else:
            raise ValueError(f"unknown method {method!r} for {task}")
        steps.append(step(task, choice))
    if alpha is not None:
        image.putalpha(alpha.resize(image.size, Image.Resampling.BICUBIC) if upscale > 1 else alpha)
    return image, steps
