# The entry points of the README: `make demo`, `make test` (and `make test-fast`). They start from nothing.
PYTHON_BOOT ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
# What the venv is built from: the library's ranges, the lock, the demo shop's and the dev requirements. The stamp's
# name carries their checksum, so changing any of them (or switching branches) rebuilds it.
REQUIREMENTS := pyproject.toml constraints.txt requirements.txt requirements-dev.txt
STAMP       := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | cksum | cut -d' ' -f1)

# The demo's generator: the kind that measured best (bench/results/2026-11-22-quality.md), trained for DEMO_STEPS
# steps or DEMO_MINUTES of wall clock, whichever ends first, so that `make demo` stays within 15 minutes on 2 cores.
# Batch 16: after 4 minutes on the demo catalogue it measured classifier-FID 8.3 on the held-out photos, against
# 10.4 at batch 32 and 9.8 at batch 8 (more steps in the same time, each still a usable gradient).
DEMO_KIND         ?= tcgan
DEMO_STEPS        ?= 5000
DEMO_MINUTES      ?= 6
DEMO_BATCH        ?= 16
DEMO_PER_CATEGORY ?= 4
DEMO_IMAGES       ?= 4
# Product scenes: a scene generator learns the demo photos' own backdrops (the products cut out, the holes filled)
# for DEMO_SCENE_MINUTES, at 128 px because the demo photos are 120x160 thumbnails (a shop's photos train at 256),
# then DEMO_SCENE_PRODUCTS products whose photos can be cut out get DEMO_SCENE_VARIANTS scenes each.
DEMO_SCENE_MINUTES  ?= 3
DEMO_SCENE_STEPS    ?= 3000
DEMO_SCENE_SIZE     ?= 128
DEMO_SCENE_PRODUCTS ?= 8
DEMO_SCENE_VARIANTS ?= 2

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15
FUZZ_EXAMPLES     ?= 1000

.PHONY: venv demo test test-fast fuzz serve worker clean

# The demo runs with DEBUG on: the published demo SECRET_KEY, plain http, Django serving the media files.
# Anything else is a deployment, which must set SECRET_KEY (the check shop.E001 refuses the published one).
demo serve worker: export DEBUG = 1

$(STAMP): $(REQUIREMENTS)
	$(PYTHON_BOOT) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP)

# The whole path on the embedded defaults (SQLite, tasks in-process): import, train (and measure, training the
# feature extractor the measuring needs), generate, learn the catalogue's backdrops and put products in scenes;
# demo_summary (and put_in_scene) fail the target when no image was made.
demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py import_catalogue shop/demo_catalogue --csv shop/demo_catalogue/catalogue.csv
	$(PY) manage.py ensure_demo_admin
	$(PY) manage.py train_imagegen --kind $(DEMO_KIND) --steps $(DEMO_STEPS) --max-minutes $(DEMO_MINUTES) --batch-size $(DEMO_BATCH) --out var/demo
	$(PY) manage.py generate_images --kind $(DEMO_KIND) --per-category $(DEMO_PER_CATEGORY) --count $(DEMO_IMAGES) --seed 0
	$(PY) manage.py train_scenes "Demo backdrops" --from-products --max-minutes $(DEMO_SCENE_MINUTES) --steps $(DEMO_SCENE_STEPS) --image-size $(DEMO_SCENE_SIZE) --seed 0
	$(PY) manage.py put_in_scene "Demo backdrops" --ready-only --limit $(DEMO_SCENE_PRODUCTS) --variants $(DEMO_SCENE_VARIANTS) --seed 0 --options '{"pose": "flat"}'
	@$(PY) manage.py demo_summary --out var/demo

serve: venv
	$(PY) manage.py runserver 127.0.0.1:8000

# One worker for every queue, for a single machine with REDIS_URL set: GPU inference ("gpu"), training
# ("train") and the light "default" queue (bulk expansion and what `celery -A shop beat` sends). A fleet
# runs one worker per queue instead (README "Workers").
worker: venv
	$(VENV)/bin/celery -A shop worker -Q gpu,train,default --concurrency 1 --loglevel INFO

# Everything on the real parts: PostgreSQL, Redis, a real Celery worker, Debian's chromium. CI runs this.
test: venv
	bash tests/ensure_services.sh
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# The edit loop: the same suite on the same PostgreSQL and Redis without the tests that start a Celery worker,
# drive chromium, run benchmarks or other long subprocesses, or build the package (markers in pytest.ini).
FAST_MARKERS ?= not integration and not browser and not slow
test-fast: venv
	bash tests/ensure_services.sh
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# Only the API fuzz (tests/test_fuzz.py), with more cases per operation than `make test` runs (100).
fuzz: venv
	bash tests/ensure_services.sh
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest tests/test_fuzz.py -s $(PYTEST_ARGS)

clean:
	rm -rf var test-output .pytest_cache
