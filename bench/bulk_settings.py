"""The demo shop's settings for bench/bulk.py: the load benchmark's (DEBUG off, persistent connections)
with the bulk batch and chunk sizes the run asks for, so the web, the worker and the benchmark agree."""
import os

from bench.load_settings import *  # noqa: F401,F403

IMAGEGEN_BULK_BATCH_SIZE = int(os.environ.get("IMAGEGEN_BULK_BATCH_SIZE", 16))
IMAGEGEN_BULK_CHUNK_SIZE = int(os.environ.get("IMAGEGEN_BULK_CHUNK_SIZE", 1000))
# Queues of the run's own, so that no other worker on the same Redis (a test worker, a developer's) takes
# the run's messages: the inference queue is only counted, the light one read by the run's worker.
IMAGEGEN_QUEUE = os.environ.get("IMAGEGEN_QUEUE", "bench-bulk-inference")
IMAGEGEN_LIGHT_QUEUE = os.environ.get("IMAGEGEN_LIGHT_QUEUE", "bench-bulk-light")
