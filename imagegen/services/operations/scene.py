"""Put in a scene: the product's real photo, cut out with a soft matte, on new backdrops of a scene set
(drawn by the set's scene generator, or the studio sweep), with contact and cast shadows, and its colour
harmonised to the scene by the shop-trained harmonisation model within a ΔE budget. One job makes
``variants`` composites from consecutive seeds; each records the set, seed, model versions and options."""
from django.utils.translation import gettext, gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...conf import settings
from ...jobcore.errors import JobError
from ...jobcore.seeds import SEED_MAX
from ...models import ScenePhoto, SceneSet
from .base import Operation, register

ASPECTS = ("1:1", "4:5", "3:4", "16:9", "original")
POSES = (("standing", _("Standing (upright on the floor)")), ("flat", _("Flat lay (lying, shot from above)")))
# A standing product's floor line and depth of field when the client gives none; a flat lay is centred and
# sharp (the whole surface is one distance from a camera above it).
STANDING_FLOOR = 0.88
STANDING_DEPTH_OF_FIELD = 1.0


def preset_names() -> list[str]:
    return list(settings.SCENE_PRESETS)


class SceneOptions(serializers.Serializer):
    scene_set = serializers.IntegerField(min_value=1, help_text=_("The scene set (its id) whose backdrops to use."))
    preset = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text=_("A named output preset (IMAGEGEN_SCENE_PRESETS); it sets aspect, long side and fill, and "
                    "a white preset puts the product on pure white."),
    )
    aspect = serializers.ChoiceField(choices=ASPECTS, default="1:1", help_text=_("The result's aspect ratio."))
    variants = serializers.IntegerField(min_value=1, default=2, help_text=_("Scenes per product, from consecutive seeds."))
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, default=0, help_text=_("Seed of the first backdrop."))
    fill = serializers.FloatField(min_value=0.2, max_value=0.95, default=0.7,
                                  help_text=_("Share of the frame's limiting side the product fills."))
    pose = serializers.ChoiceField(
        choices=POSES, default="standing",
        help_text=_("How the product sits: upright on the floor (a cast shadow on the floor), or a flat lay "
                    "(lying on the surface, shot from above: a soft drop shadow, centred, no floor reflection)."),
    )
    floor = serializers.FloatField(
        min_value=0.5, max_value=0.98, required=False, allow_null=True, default=None,
        help_text=_("Height of the floor line the product stands on, as a share of the frame from the top "
                    "(default 0.88; for a flat lay (1 + fill) / 2, which centres a product whose height limits it)."),
    )
    position = serializers.FloatField(min_value=0.2, max_value=0.8, default=0.5,
                                      help_text=_("Horizontal position of the product's centre, as a share of the width."))
    long_side = serializers.IntegerField(
        min_value=256, max_value=4096, required=False, allow_null=True, default=None,
        help_text=_("Long side of the result in pixels; without it, the photo's own scale (at least 1024 px when the photo has it)."),
    )
    shadow = serializers.BooleanField(default=True, help_text=_("A contact shadow and a soft cast shadow."))
    light = serializers.FloatField(min_value=-180, max_value=180, default=135,
                                   help_text=_("Direction the light comes from, in degrees (the cast shadow falls away from it)."))
    reflection = serializers.FloatField(min_value=0.0, max_value=0.5, default=0.0,
                                        help_text=_("Strength of a floor reflection (0: none)."))
    harmonise = serializers.BooleanField(
        default=True, help_text=_("Adjust the product's colour and brightness to the scene (within the ΔE budget) "
                                  "with the harmonisation model, when one is trained."),
    )
    depth_of_field = serializers.FloatField(
        min_value=0.0, max_value=2.0, required=False, allow_null=True, default=None,
        help_text=_("How out of focus the backdrop is away from the floor line (0: sharp; default 1, and 0 for a flat lay)."),
    )

    def validate_variants(self, value: int) -> int:
        if value > settings.SCENE_MAX_VARIANTS:
            raise serializers.ValidationError(
                gettext("At most %(most)d variants per product.") % {"most": settings.SCENE_MAX_VARIANTS})
        return value

    def validate_scene_set(self, value: int) -> int:
        if not SceneSet.objects.filter(pk=value).exists():
            raise serializers.ValidationError(gettext("There is no scene set %(id)s.") % {"id": value})
        return value

    def validate(self, attrs: dict) -> dict:
        if attrs.get("pose") == "flat" and attrs.get("reflection"):
            raise serializers.ValidationError({"reflection": gettext("A flat lay has no floor reflection: leave it at 0.")})
        return attrs

    def validate_preset(self, value: str) -> str:
        if value and value not in settings.SCENE_PRESETS:
            raise serializers.ValidationError(gettext("Unknown preset %(name)s; choose one of: %(names)s.") % {
                "name": value, "names": ", ".join(preset_names())})
        return value


def layout_of(options: dict) -> tuple[dict, bool]:
    """(``mlcore.scenes.Layout`` fields, whether the product goes on pure white), a preset's values first."""
    preset = settings.SCENE_PRESETS.get(options.get("preset") or "", {})
    fill = preset.get("fill", options["fill"])
    floor = options.get("floor")
    if floor is None:
        # A flat lay's box centred: its bottom edge at (1 + fill) / 2 when its height limits it.
        floor = min(0.98, (1 + fill) / 2) if options.get("pose") == "flat" else STANDING_FLOOR
    layout = {
        "aspect": preset.get("aspect", options["aspect"]),
        "fill": fill,
        "floor": floor,
        "x": options["position"],
        "long_side": preset.get("long_side", options["long_side"]),
    }
    return layout, bool(preset.get("white"))


def lighting_of(options: dict) -> dict | None:
    if not options["shadow"] and not options["reflection"]:
        return None
    lighting = {"direction": options["light"], "reflection": options["reflection"], "pose": options.get("pose", "standing")}
    if not options["shadow"]:
        lighting.update(contact=0.0, cast=0.0)
    return lighting


def depth_of_field_of(options: dict) -> float:
    if options.get("depth_of_field") is not None:
        return options["depth_of_field"]
    return 0.0 if options.get("pose") == "flat" else STANDING_DEPTH_OF_FIELD


def hex_rgb(name: str) -> tuple[int, int, int]:
    return tuple(int(name[i : i + 2], 16) for i in (1, 3, 5))


@register
class Scene(Operation):
    """Put the product's real photo in new scenes: cut out with a soft matte, placed on the floor line of
    backdrops from a scene set (new ones drawn by the set's trained scene generator, or the studio sweep),
    with shadows and harmonised colour. Answers with the job; it makes `variants` images."""

    name = "scene"
    order = 10
    label = _("Put in a scene")
    serializer_class = SceneOptions
    result_kind = "scene"
    result_label = _("Scene")
    model_kind = "harmonise"
    model_optional = True
    model_label = _("Scene harmonisation model")
    action_name = "put_in_scene"
    action_button = _("Put in a scene")
    action_description = _("Put in a scene (new backdrops from a scene set)")
    admin_form = "imagegen.admin.operation_forms.SceneForm"

    def example_options(self, products: list) -> dict:
        studio = SceneSet.objects.filter(source=SceneSet.Source.STUDIO).first()
        if studio is None:
            studio = SceneSet.objects.create(name="Studio (contract test)", source=SceneSet.Source.STUDIO)
        return {"scene_set": studio.pk, "variants": 2, "long_side": 256}

    def load_models(self, options: dict, models) -> dict:
        """The set's backdrop generator and the cut-out model (the classical cut-out when none is trained)."""
        scene_set = SceneSet.objects.filter(pk=options["scene_set"]).first()
        if scene_set is None:
            raise JobError(gettext("The scene set %(id)s no longer exists.") % {"id": options["scene_set"]})
        generator_version = generator = None
        photos = []
        if scene_set.source != SceneSet.Source.STUDIO:
            generator_version, generator = models.active("scenes", scene_set=scene_set)
            if generator_version is None:
                # No generator that beat the studio sweep (or none trained yet): the set's own photos, as they are.
                photos = list(scene_set.photos.order_by("pk").values_list("pk", flat=True))
            if generator_version is None and not photos:
                raise JobError(gettext(
                    "The scene set “%(name)s” has no photos and no trained scene generator yet: add photos, or train "
                    "its generator in the admin (Scene sets, “Train the scene generator”).") % {"name": scene_set.name})
        segment_version, segmenter = models.active("segment")
        return {
            "_scene_set": scene_set, "_generator": generator, "_photos": photos, "_segmenter": segmenter,
            "_versions": {"scenes": getattr(generator_version, "pk", None), "segment": getattr(segment_version, "pk", None)},
        }

    def versions_used(self, prepared: dict) -> list[int]:
        return [pk for pk in prepared["_versions"].values() if pk is not None]

    def results(self, photo, options: dict, model) -> list:
        return [(seed, self.apply(photo, options, model, seed)) for seed in range(options["seed"], options["seed"] + options["variants"])]

    def apply(self, photo, options: dict, model, seed: int | None = None):
        backend = get_backend()
        seed = options["seed"] if seed is None else seed
        layout, white = layout_of(options)
        scene_set = options["_scene_set"]
        source = "white"
        if white:
            backdrop = "white"
        elif scene_set.source == SceneSet.Source.STUDIO:
            backdrop, source = backend.studio_backdrop(hex_rgb(scene_set.colour), (settings.SCENE_IMAGE_SIZE,) * 2, seed), "studio"
        elif options["_generator"] is not None:
            backdrop, source = backend.scene_backdrop(options["_generator"], seed), "generated"
        else:
            photo_id = options["_photos"][seed % len(options["_photos"])]
            backdrop, source = backend.photo_backdrop(_scene_photo(photo_id), seed), f"photo {photo_id}"
        harmoniser = model if options["harmonise"] and not white else None
        try:
            image, info = backend.compose_product_scene(
                photo, options["_segmenter"], backdrop, layout=layout, lighting=lighting_of(options),
                harmoniser=harmoniser, max_delta_e=settings.SCENE_HARMONISE_MAX_DELTA_E,
                depth_of_field=depth_of_field_of(options), seed=seed, min_long_side=settings.SCENE_MIN_LONG_SIDE,
            )
        except ValueError as exc:
            raise JobError(gettext("The product could not be put in a scene: %(reason)s") % {"reason": exc}) from exc
        image.info["imagegen"] = {
            "scene_set": scene_set.pk, "scene_set_name": scene_set.name, "seed": seed, "models": options["_versions"],
            "backdrop": source,
            "harmonised": harmoniser is not None, "composite": _plain(info),
        }
        return image

    def describe(self, options: dict) -> str:
        scene_set = SceneSet.objects.filter(pk=options["scene_set"]).first()
        return gettext("the product cut out and put in the scene set “%(name)s”") % {
            "name": scene_set.name if scene_set else options["scene_set"]}


def _scene_photo(photo_id: int):
    """A scene set's stored photo (imagegen's own PNG re-encoding, checked when it was uploaded or made)."""
    from PIL import Image

    photo = ScenePhoto.objects.filter(pk=photo_id).first()
    if photo is None:
        raise JobError(gettext("The scene photo %(id)s no longer exists.") % {"id": photo_id})
    with photo.image.open("rb") as fh, Image.open(fh) as image:
        return image.convert("RGB")


def _plain(value):
    """``value`` with only what JSON stores (numbers, strings, lists, dicts) kept."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
