"""A shim: moved to ``core/sizes.py``. The old import path stays for the adapters not yet on the
spec runner (fal, replicate, bfl, bedrock, gemini, imagen); removed in phase 2."""

from .core.sizes import aspect_ratio, nearest_size, parse_wh

__all__ = ["aspect_ratio", "nearest_size", "parse_wh"]
