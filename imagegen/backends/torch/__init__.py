"""The default backend: imagegen's models are mlcore's, run with PyTorch in this process.

The class body is the backend's whole interface, one line per method. Each method's module (and with it
torch) is imported on its first call, so a process that only lists kinds or stores jobs (the web, the
light queue) never loads torch; the modules themselves import torch and mlcore at their top.
"""
from .lazy import In as _In
from .light import LightMixin


class TorchBackend(LightMixin):
    """Trains (fit), loads, generates with and applies mlcore's models for imagegen's services."""

    # Memory, devices and processes (system.py)
    is_out_of_memory = _In("system")
    on_gpu = _In("system")
    release_memory = _In("system")
    resolve_device = _In("system")
    process_device = _In("system")
    check_processes = _In("system")
    distributed = _In("system")

    # Photos into tensors (data.py)
    photo_cache = _In("data")
    decode_photo = _In("data")
    stack_training_set = _In("data")
    photo_colour = _In("data")

    # Generators: fit, load, generate (generators.py)
    fit_generator = _In("generators")
    load_generator = _In("generators")
    generator_plots = _In("generators")
    named_category = _In("generators")

    # Photo models: fit, validate, load (photo_models.py)
    fit_photo_model = _In("photo_models")
    validate_photo_model = _In("photo_models")
    validates = _In("photo_models")
    load_photo_model = _In("photo_models")
    loss_curve = _In("photo_models")

    # Measuring generators and checking their images for near copies (evaluation.py, copies.py)
    train_feature_extractor = _In("evaluation")
    load_feature_extractor = _In("evaluation")
    measure_generator = _In("evaluation")
    enough_real_photos = _In("evaluation")
    load_copy_reference = _In("copies")
    check_copies = _In("copies")

    # The photo operations' work beyond a loaded model (operations.py)
    place_on_background = _In("operations")
    find_backdrop_specks = _In("operations")
    brand_look_of = _In("operations")
    needed_enhancements = _In("operations")
    enhance_photo = _In("operations")
    repair_photo = _In("operations")
    expand_photo = _In("operations")

    # Colourways (colourways.py)
    recolour_product = _In("colourways")

    # Product scenes: composition, backdrops (scenes.py)
    compose_product_scene = _In("scenes")
    product_mask = _In("scenes")
    check_scene_generator = _In("scenes")
    photo_backdrop = _In("scenes")
    empty_backdrop = _In("scenes")
    studio_backdrop = _In("scenes")
    scene_backdrop = _In("scenes")

    # Shoppers' taste for the storefront (taste.py)
    taste_features = _In("taste")
    mean_tastes = _In("taste")
    cluster_tastes = _In("taste")
    taste_distances = _In("taste")
    nearest_tastes = _In("taste")
