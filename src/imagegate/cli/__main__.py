"""``python -m imagegate.cli``: the same as the ``imagegate`` console script."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
