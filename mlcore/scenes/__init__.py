"""Product scenes: the real product, cut out of the shop's own photo, standing on a new backdrop at full
resolution, with contact and cast shadows, an optional floor reflection, depth of field and optional
colour harmonisation. The product's pixels stay the photo's pixels; only what is around them is new.

Public API (what imagegen calls):

    from mlcore.scenes import Layout, Lighting, PRESETS, soft_matte, compose_scene
    mask = Segmenter.classical().mask(photo)            # mlcore.background: PIL "L", 255 = product
    matte = soft_matte(photo, mask)                     # soft edge along the photo's own edges
    scene = compose_scene(photo, matte, backdrop_image, layout=PRESETS["square-1080"].layout(),
                          lighting=Lighting(), harmonise=None, seed=0)
    scene.image, scene.alpha, scene.box, scene.scale, scene.info

    canvas_for(layout, photo_size, box_size)            # the canvas a layout gives, before any pixels
    place_on_floor(photo, matte, layout)                # just the placed product (premultiplied)
    fit_backdrop(backdrop, (w, h), floor=0.88)          # a backdrop scaled, with depth of field

Modules, one job each: ``layout`` (aspects, presets, ``Layout``, canvas size), ``matte`` (soft matte,
edge colour decontamination), ``placement`` (the product on the floor line), ``grounding`` (where the
product, or each piece of a pair, meets the floor), ``shadows`` (``Lighting``,
contact and cast shadows, reflection), ``filters`` (fast Gaussian and depth-varying blur), ``depth``
(backdrop fit, depth of field, grain), ``compose`` (``compose_scene``).
"""

from .compose import Harmoniser, SceneComposite, compose_scene
from .depth import fit_backdrop
from .layout import ASPECTS, PRESETS, Layout, Preset, canvas_for, plan_canvas
from .matte import premultiplied_foreground, soft_matte
from .placement import FloorPlacement, place_on_floor
from .shadows import Lighting, cast_shadow, contact_shadow, darkening, reflection

# backdrops (generated scene backdrops): added by its own module, mlcore/scenes/backdrops.py.

__all__ = [
    "ASPECTS", "FloorPlacement", "Harmoniser", "Layout", "Lighting", "PRESETS", "Preset", "SceneComposite",
    "canvas_for", "cast_shadow", "compose_scene", "contact_shadow", "darkening", "fit_backdrop",
    "place_on_floor", "plan_canvas", "premultiplied_foreground", "reflection", "soft_matte",
]
