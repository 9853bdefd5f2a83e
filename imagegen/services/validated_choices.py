"""What a photo model's validation chose per task (the model, a classical tool, or nothing), in words: for
its activation message, and for each result's provenance (which method ran)."""
from django.utils.translation import gettext, gettext_lazy as _

TASK_LABELS = {
    "exposure": _("exposure"), "colour": _("colour cast"), "denoise": _("denoise"), "jpeg": _("JPEG clean-up"),
    "deblur": _("deblur"), "upscale2": _("enlargement x2"), "upscale4": _("enlargement x4"), "auto": _("automatic"),
    "repair_small": _("small repairs"), "repair_large": _("large repairs"), "expand": _("expanding"),
}
METHOD_LABELS = {"model": _("the shop's trained model"), "unchanged": _("left unchanged")}


def task_label(name: str) -> str:
    return str(TASK_LABELS.get(name, name))


def method_label(step: dict) -> str:
    """How a step or a choice ({"method", "tool"}) ran: the tool's name, the model, or nothing."""
    return step["tool"] if step["method"] == "tool" else str(METHOD_LABELS[step["method"]])


def describe_steps(steps: list[dict]) -> str:
    return "; ".join(gettext("%(task)s by %(method)s") % {"task": task_label(s["task"]), "method": method_label(s)}
                     for s in steps)


def describe_with_step(description: str, info: dict, key: str) -> str:
    """An operation's description with the one step its result records under ``key`` (what filled the holes, ...)."""
    return description + (" (" + describe_steps([info[key]]) + ")" if key in info else "")


def describe_choices(validation: dict) -> str:
    """The activation message of a version validated per task. Such a version always serves: it never runs
    where it lost, and its choices keep every task from making photos worse."""
    choices = [{"name": name, **choice} for name, choice in validation["tasks"].items()]
    won = [gettext("%(task)s (%(margin)+.2f dB over the best other)") % {
        "task": task_label(c["name"]), "margin": c["model_margin_db"]} for c in choices if c["method"] == "model"]
    others = [gettext("%(task)s: %(method)s") % {"task": task_label(c["name"]), "method": method_label(c)}
              for c in choices if c["method"] != "model"]
    parts = [gettext("On %(photos)s held-out photos the model beat the classical tools at: %(tasks)s.") % {
        "photos": validation["photos"], "tasks": ", ".join(won) or gettext("nothing")}]
    if others:
        parts.append(gettext("Elsewhere: %(others)s.") % {"others": "; ".join(others)})
    return " ".join(parts)


def validated_choices(models, kind: str) -> dict:
    """The options an operation's ``load_models`` adds (``models`` is its argument): ``_choices``, per task what
    the serving version of ``kind`` chose on held-out photos, None without a serving version validated so (the
    classical tools run); ``_choices_from``, that version's id."""
    version = models.version(kind)
    validation = (version.metrics or {}).get("validation") if version is not None else None
    choices = (validation or {}).get("tasks") or None
    return {"_choices": choices, "_choices_from": version.pk if choices else None}
