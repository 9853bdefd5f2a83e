"""mlcore: small PyTorch image generators trained on a shop's own product photos.

Pure PyTorch by design: nothing here may import Django or the web app, so the
training code can be tested, benchmarked and reused without a web stack.
"""

import os

# OpenMP threads spin while they wait by default. When another busy process shares
# the (2-core) machine, spinning threads starve each other: measured with two
# trainings at once, a 64 px step took ~3 s instead of 0.32 s with passive waiting,
# which costs ~7% (0.21 -> 0.225 s) when training alone. This only takes effect if
# set before torch loads OpenMP (import mlcore first); an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
