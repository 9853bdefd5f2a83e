"""Every imagegen setting, with its default.

A host project overrides a setting by defining ``IMAGEGEN_<NAME>`` in its Django settings; code reads
``from imagegen.conf import settings`` and then ``settings.PRODUCT_MODEL``. Asking for a name that is
not in ``DEFAULTS`` raises, so a typo fails loudly instead of silently reading ``None``. The README's
"Settings reference" documents each one.
"""
from typing import Any

from django.conf import settings as django_settings

PREFIX = "IMAGEGEN_"

DEFAULTS: dict[str, Any] = {
    # The host's product model, as "app_label.ModelName" (like AUTH_USER_MODEL).
    "PRODUCT_MODEL": "shop.Product",
    # Field of the product model holding its primary image.
    "PRODUCT_IMAGE_FIELD": "image",
    # Lookup path from the product to further images (a gallery), or None.
    "PRODUCT_GALLERY_FIELD": None,
    # Lookup path from the product to its category label (the GAN's condition).
    "PRODUCT_CATEGORY_FIELD": "category",
    # Product fields whose text describes it (used for conditioning and in the admin).
    "PRODUCT_TEXT_FIELDS": ("name",),
    # JSON field holding attributes such as colour, material and pattern, or None.
    "PRODUCT_ATTRIBUTES_FIELD": None,
    # The class that trains and runs the models, as a dotted path: imagegen's only door into mlcore and torch.
    "BACKEND": "imagegen.backends.torch.TorchBackend",
    # Celery queues (README "Workers"): QUEUE takes GPU inference (generate and edit jobs, gathered into
    # batched forward passes), TRAIN_QUEUE training jobs (long; one per GPU), LIGHT_QUEUE the CPU-only work
    # (expanding bulk operations, the reconciler, storefront events and segments).
    "QUEUE": "gpu",
    "TRAIN_QUEUE": "train",
    "LIGHT_QUEUE": "default",
    # Seconds before a task is asked to stop (SoftTimeLimitExceeded), then killed.
    "TASK_SOFT_TIME_LIMIT": 3300,
    "TASK_TIME_LIMIT": 3600,
    # The same for training jobs (imagegen.run_training_job), which take hours: a day, less five minutes for
    # the job to record why it stopped. Keep them above IMAGEGEN_TRAIN_MAX_MINUTES, and the hard one below
    # the broker's visibility timeout.
    "TRAIN_TASK_SOFT_TIME_LIMIT": 24 * 3600 - 300,
    "TRAIN_TASK_TIME_LIMIT": 24 * 3600,
    # A worker renews a running job's lease every third of this; a job whose lease ran out (its worker
    # was killed, ran out of memory or lost the database) is run again by the reconciler.
    "JOB_LEASE_SECONDS": 120,
    # Attempts (worker deaths included) before a job is failed with the reason.
    "JOB_MAX_ATTEMPTS": 3,
    # A queued job no worker has claimed for this many seconds is sent to the broker again (the message
    # was lost, or the broker was down when the job was created).
    "RECONCILE_QUEUED_AFTER": 120,
    # Storage alias (settings.STORAGES) for generated images, checkpoints and plots.
    "STORAGE": "default",
    # Folder inside that storage.
    "UPLOAD_TO": "imagegen",
    # Uploaded source photos (API and admin). Larger files are refused while they stream in, before any
    # decoding; keep a reverse proxy's body limit (nginx client_max_body_size) a little above it.
    "UPLOAD_MAX_BYTES": 20 * 1024 * 1024,
    # Most pixels (width x height) an upload may declare; checked on the header, before the pixels are
    # decoded, so a decompression bomb costs nothing. It also bounds the memory one upload can take
    # (4 bytes a pixel, a few copies), whatever Pillow's own Image.MAX_IMAGE_PIXELS says.
    "UPLOAD_MAX_PIXELS": 40_000_000,
    # Shortest side in pixels an upload may have; smaller images teach a generator nothing.
    "UPLOAD_MIN_SIDE": 32,
    # Pillow format names an upload may be decoded as; no other decoder ever sees uploaded bytes.
    # Animated images (GIF, APNG, WebP) are refused whatever the format.
    "UPLOAD_FORMATS": ("JPEG", "PNG", "WEBP", "GIF"),
    # "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N". "auto" and "cuda" spread the pool
    # processes of a worker over the machine's GPUs (process i on GPU i mod count).
    "DEVICE": "auto",
    # --- Inference on the GPU workers (services.batching, mlcore.inference) ---
    # Most images in one forward pass. A worker running a generate job also claims other queued generate
    # jobs of the same kind, oldest first, up to this many images, and makes them in one pass per model
    # version. 1 switches the gathering off (one job per pass).
    "INFERENCE_MAX_BATCH": 64,
    # Seconds a worker waits for more generate jobs to arrive before it runs a pass that is not full.
    "INFERENCE_BATCH_WAIT": 0.05,
    # "auto" (bf16 autocast on a CUDA GPU that supports it, fp32 on the CPU), "fp32" or "bf16" (CUDA only).
    "INFERENCE_PRECISION": "auto",
    # Channels-last memory for the generating network: "on", "off" or "auto" (on CUDA only). On: measured
    # faster on the CPU too (bench/results/2026-12-07-inference.md), as it is on GPUs.
    "INFERENCE_CHANNELS_LAST": "on",
    # torch.compile the generating network: "off", "default", "reduce-overhead" (CUDA graphs) or
    # "max-autotune". Off until bench/inference.py measures it faster on the worker's own device.
    "INFERENCE_COMPILE": "off",
    # Model versions a worker process keeps loaded (least recently used ones are dropped).
    "LOADED_MODELS_PER_PROCESS": 4,
    # Inference workers load the newest active versions when each pool process starts, so the first jobs
    # after a deploy or restart do not wait for a checkpoint to load.
    "WARM_MODELS": False,
    # Generator kinds that can be trained and used.
    "KINDS": ("cgan", "vae", "cvae", "tcgan", "ddpm"),
    "DEFAULT_KIND": "tcgan",
    # Image side in pixels for new generators (64 or 128).
    "IMAGE_SIZE": 64,
    # Most images one generate request may ask for.
    "MAX_IMAGES_PER_JOB": 16,
    # Decoded training photos (squared uint8 tensors and their colour) are kept in this folder, local to a
    # worker machine, so later training runs and every process of a distributed run skip the JPEG decoding.
    # None: "imagegen-decoded-photos-<uid>" in the system's temporary folder, private to the worker's user
    # (mode 0700; one that another user owns is not used). Cache errors (unwritable, full) are logged and
    # the photos decoded without it.
    "DECODED_PHOTO_CACHE_DIR": None,
    # Size cap of that folder in MB (least recently used entries go first); 0 switches the cache off.
    "DECODED_PHOTO_CACHE_MAX_MB": 2048,
    # Training defaults; the admin form, the API and train_imagegen can override them per run.
    "TRAIN_STEPS": 1500,
    "TRAIN_BATCH_SIZE": 32,
    "TRAIN_MAX_MINUTES": None,
    "TRAIN_SEED": 0,
    # Folder of the periodic checkpoints of running training jobs (one file per job, removed once its model
    # version is registered), from which a restarted job continues; on several machines, one they all share.
    # None: no periodic checkpoints (a restarted job starts over).
    "TRAIN_CHECKPOINT_DIR": None,
    # Training steps between two periodic checkpoints.
    "TRAIN_CHECKPOINT_EVERY": 200,
    # A training job needs at least this many readable images.
    "MIN_TRAINING_IMAGES": 8,
    # Share of the selected products (per category, the same products every run) whose photos a generator
    # never trains on: the metrics before activation and the near-copy test measure against them.
    "HELD_OUT_SHARE": 0.1,
    # R1 gradient penalty on the discriminator's real images (GAN kinds; 0 switches it off), applied lazily
    # every R1_EVERY steps. It steadies training on small catalogues at some cost in speed.
    "R1_GAMMA": 0.0,
    "R1_EVERY": 16,
    # Near copies of training photos. The threshold is this percentile of the distances between distinct
    # training photos (so it flags about that share of new real photos too). A version is not activated
    # when its samples are flagged significantly more often than held-out photos (Fisher's exact test,
    # one-sided, at NEAR_COPY_ALPHA); a generated image close to a training photo and distinctly closest
    # to it is attached as rejected.
    "NEAR_COPY_PERCENTILE": 1.0,
    "NEAR_COPY_ALPHA": 0.01,
    # Activate a newly trained version: "if-better" (its FID, measured on its held-out photos with the active
    # feature extractor, or one trained for it, is no worse than the active versions it replaces, and its
    # samples are not near copies of training photos more often than held-out photos are), "always" or
    # "never" (staff activate it in the admin).
    "AUTO_ACTIVATE": "if-better",
    # Generated images whose quality score is below this are attached as rejected, with the reason;
    # None attaches every image as pending. Scores are per model and uncalibrated: set it per shop.
    "MIN_QUALITY_SCORE": None,
    # Generated images start in this review state ("pending" or "approved").
    "DEFAULT_REVIEW_STATE": "pending",
    # API rate limits ("<n>/<second|minute|hour|day>", or None for no limit): "user" per signed-in user,
    # "ip" per client address, "jobs" per user (or address) for requests that start work.
    "THROTTLE_RATES": {"user": "600/minute", "ip": "1200/minute", "jobs": "60/minute"},
    # Failed password checks (API basic authentication, the token endpoint) allowed per client address and
    # per username before further attempts are refused with 429 without hashing the password; DRF rates,
    # None switches one off. Per username, so that a guesser gains nothing by using many addresses.
    "LOGIN_FAILURE_RATES": {"address": "30/hour", "username": "10/hour"},
    # Jobs one user may have queued or running at once; further requests are refused (429). None: no cap.
    "MAX_ACTIVE_JOBS_PER_USER": 50,
    # --- Bulk operations (services.bulk) ---
    # An admin "Generate images" over more products than this becomes one bulk operation, expanded into
    # jobs in the background, instead of jobs made in the web request.
    "BULK_THRESHOLD": 50,
    # Jobs of a bulk operation per imagegen.run_jobs message on the inference queue.
    "BULK_BATCH_SIZE": 16,
    # Jobs the expansion creates per transaction (then sends their messages); also its resume step.
    "BULK_CHUNK_SIZE": 1000,
    # Bulk operations one user may have unfinished at once (their jobs do not count against
    # MAX_ACTIVE_JOBS_PER_USER one by one). None: no cap.
    "MAX_ACTIVE_BULK_OPERATIONS_PER_USER": 3,
    # --- Storefront personalization ---
    # Key of the HMAC that turns the storefront's shopper ids into the stored keys; None: derived from
    # SECRET_KEY. Changing it forgets every shopper's history (their keys change).
    "SHOPPER_HASH_KEY": None,
    # Shopper segments (k of k-means); variants are made per segment and product.
    "SEGMENTS": 4,
    # Events (clicks, carts, purchases weigh more than views) before a shopper is put in a segment.
    "SEGMENT_MIN_EVENTS": 3,
    # Redis URL of the event buffer: events are appended there and written in bulk by the flush task
    # (imagegen.flush_events). None: each request's events are written at once.
    "EVENT_BUFFER_URL": None,
    # Most events one request may carry, and one flush writes.
    "EVENTS_PER_REQUEST": 100,
    "EVENT_FLUSH_BATCH": 5000,
    # Share of impressions the bandit spreads evenly over the arms, whatever it has learnt (the
    # exploration floor), so no variant is starved of the data that would show it is better.
    "BANDIT_EXPLORATION": 0.1,
    # Seconds the storefront keeps a product's arms and their counts in the cache before reading them again.
    "STOREFRONT_CACHE_SECONDS": 30,
    # Rate limit of the public storefront endpoints per client address (None: none).
    "STOREFRONT_THROTTLE_RATE": "1200/minute",
    # Seconds the impression token handed out with a product's images stays valid. Only events carrying a
    # valid token count for the bandit and the segments, so it bounds how late a click or purchase may follow
    # the page view (and how long a leaked token could be replayed, once per event kind).
    "IMPRESSION_TOKEN_SECONDS": 3600,
    # Days storefront events are kept (imagegen.purge_events deletes older ones); None keeps them forever.
    # The A/B counts are kept apart (ArmStats), so this limits only the shoppers' history and taste.
    "EVENT_RETENTION_DAYS": 90,
    # CIE76 colour difference (delta E in CIELAB) a segment's backdrop colour must move before its variants
    # are made again; below about 2 people see no difference, and each re-make is one edit job per product.
    "VARIANT_REMAKE_DELTA_E": 10.0,
    # --- Product scenes (services.scenes, the "scene" operation) ---
    # A scene set's generator trains on at least this many backdrops; a smaller set is refused with the number.
    "SCENE_MIN_PHOTOS": 12,
    # Side of the backdrops a scene generator learns and draws (a power of two, 256 or more).
    "SCENE_IMAGE_SIZE": 256,
    # Most variants (scenes) one product's scene job makes.
    "SCENE_MAX_VARIANTS": 8,
    # A composite is at least this long on its long side when the product's photo is (else the photo's scale).
    "SCENE_MIN_LONG_SIDE": 1024,
    # CIE76 colour difference that harmonisation may move any product pixel at most: the product stays the
    # product the shop sells. Set per shop; 0 switches harmonisation off everywhere.
    "SCENE_HARMONISE_MAX_DELTA_E": 8.0,
    # Named output presets (like THUMBNAIL_ALIASES): aspect ("1:1", "4:5", "3:4", "16:9", "original"), long
    # side in pixels, the product's fill, and "white" to put the product on pure #FFFFFF instead of the scene
    # (a marketplace's main image). A shop adds its own or replaces these.
    "SCENE_PRESETS": {
        "marketplace-white-2000": {"aspect": "1:1", "long_side": 2000, "fill": 0.85, "white": True,
                                   "label": "Marketplace main image: white, 2000 px square"},
        "square-1080": {"aspect": "1:1", "long_side": 1080, "fill": 0.7, "label": "Social square, 1080 px"},
        "portrait-1350": {"aspect": "4:5", "long_side": 1350, "fill": 0.7, "label": "Portrait 4:5, 1080×1350"},
        "banner-1920": {"aspect": "16:9", "long_side": 1920, "fill": 0.55, "label": "Banner 16:9, 1920 px"},
        "taobao-white-800": {"aspect": "1:1", "long_side": 800, "fill": 0.85, "white": True,
                             "label": "Taobao / Tmall main image: white, 800 px square"},
        "jd-white-800": {"aspect": "1:1", "long_side": 800, "fill": 0.85, "white": True,
                         "label": "JD.com main image: white, 800 px square"},
    },
}


class Settings:
    """Lazy view of the IMAGEGEN_* settings with their defaults.

    Values are read from django.conf.settings on every access (nothing is cached), so
    ``override_settings`` in tests needs no ``setting_changed`` receiver.
    """

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown imagegen setting: {PREFIX}{name}")
        return getattr(django_settings, PREFIX + name, DEFAULTS[name])


settings = Settings()

