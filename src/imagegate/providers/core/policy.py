"""Content-policy refusals: one list of markers, one mapping, for every provider.

Why one: providers word a moderation refusal in many ways ("rejected by the safety system",
``contentFilter``, "flagged by our content moderation", ``nsfw_prompt``) and answer it with a
400, a 422 or a 403. Whatever the wording, the gateway answers 400
``content_policy_violation``: the caller's prompt or image is refused, so it is answered at once
and never retried or sent to a fallback.
"""

from __future__ import annotations

from ...errors import UpstreamHTTPError

CODE = "content_policy_violation"
# Lower-case substrings of a provider's error code or message that mark a policy refusal.
MARKERS = (
    "content_policy",
    "content policy",
    "contentfilter",
    "content filter",
    "content_filter",
    "moderat",  # moderation, moderated, moderation_blocked
    "nsfw",
    "safety",
    "flagged",
    "sensitive content",
)


def is_policy(text: str | None) -> bool:
    """Whether a provider's error code or message reads like a content-policy refusal."""
    lowered = (text or "").lower()
    return any(marker in lowered for marker in MARKERS)


def content_policy(provider: str, message: str) -> UpstreamHTTPError:
    """The 400 ``content_policy_violation`` for a refusal found outside an HTTP status (a
    filtered finish reason, a moderated job)."""
    return UpstreamHTTPError(f"{provider}: {message}", status=400, code=CODE)


def refusal(status: int, text: str, policy_statuses: frozenset[int]) -> bool:
    """Whether an error answer with ``status`` and ``text`` (code and message) is a refusal."""
    return status in policy_statuses and is_policy(text)
