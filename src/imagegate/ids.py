"""Random bits for identifiers that must be unique but not secret (trace ids, form boundaries).

From a per-process generator seeded from the OS (and reseeded in a forked child), not from
``os.urandom`` per call: that syscall releases the GIL, and on a busy gateway getting it back
cost ~0.5 ms of latency per request. Nothing here may be used for keys or signatures.
"""

from __future__ import annotations

import os
import random

_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))


def random_bits(n: int) -> int:
    """``n`` random bits as an int."""
    return _rng.getrandbits(n)
