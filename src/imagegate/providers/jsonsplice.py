"""A shim: moved to ``core/jsonsplice.py``. The old import path stays for the adapters not yet on
the spec runner (tests and bench/micro.py); removed in phase 2."""

from .core.jsonsplice import loads

__all__ = ["loads"]
