"""A shim: moved to ``core/inputs.py``, ``core/masks.py``. The old import path stays for the
adapters not yet on the spec runner (fal, replicate, bfl, bedrock, gemini, vertex); removed in
phase 2."""

from .core.inputs import (
    b64,
    data_uri,
    is_missing,
    png_data_uri,
    read,
    remember,
    remembered,
    too_many_pixels,
)
from .core.masks import EditColour, alpha_mask, provider_mask

__all__ = [
    "EditColour",
    "alpha_mask",
    "b64",
    "data_uri",
    "is_missing",
    "png_data_uri",
    "provider_mask",
    "read",
    "remember",
    "remembered",
    "too_many_pixels",
]
