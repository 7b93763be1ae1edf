"""A shim: moved to ``core/polling.py``. The old import path stays for the adapters not yet on the
spec runner (fal, replicate, bfl, bedrock); removed in phase 2."""

from .core.polling import Jobs, interval_option, transient

__all__ = ["Jobs", "interval_option", "transient"]
