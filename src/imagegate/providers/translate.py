"""A shim: moved to ``core/answers.py``, ``core/masks.py``, ``core/policy.py``, ``core/sizes.py``.
The old import path stays for the adapters not yet on the spec runner (google, gemini, imagen,
vertex); removed in phase 2."""

from .core.answers import token_usage
from .core.masks import edit_mask_png
from .core.policy import is_policy as is_policy_message
from .core.sizes import OPENAI_SIZES, RatioSizes, batches, side_tier

__all__ = [
    "OPENAI_SIZES",
    "RatioSizes",
    "batches",
    "edit_mask_png",
    "is_policy_message",
    "side_tier",
    "token_usage",
]
