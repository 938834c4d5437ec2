"""The seed of this run's fuzzing: fresh every run, so the fuzz tests keep finding new
cases; printed in pytest's header so a failure replays with ``FUZZ_SEED=<seed> make test``."""

from __future__ import annotations

import os
import random

SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
