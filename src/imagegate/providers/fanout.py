"""A shim: moved to ``core/fanout.py``. The old import path stays for the adapters not yet on the
spec runner (fal, replicate, bfl, bedrock, google, vertex); removed in phase 2."""

from .core.fanout import fan_out, first_failure, gather

__all__ = ["fan_out", "first_failure", "gather"]
