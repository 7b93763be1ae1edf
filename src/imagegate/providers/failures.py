"""A shim: moved to ``core/failures.py``, ``core/policy.py``. The old import path stays for the
adapters not yet on the spec runner (fal, replicate, bfl, bedrock, gemini, imagen, vertex);
removed in phase 2."""

from .core.failures import invalid_input, job_failed, no_image, not_configured
from .core.policy import MARKERS as POLICY_WORDS
from .core.policy import content_policy
from .core.policy import is_policy as looks_like_policy

__all__ = [
    "POLICY_WORDS",
    "content_policy",
    "invalid_input",
    "job_failed",
    "looks_like_policy",
    "no_image",
    "not_configured",
]
