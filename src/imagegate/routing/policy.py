"""One request's routing rules, resolved from its options and the config (docs/routing.md).

Kept apart from ``execute`` so the rules read as data: how many attempts, which statuses are
retried or fall back, how long an attempt may take and how long to wait before the next::

    policy = Policy.of(request.options, config.routing)
    policy.max_attempts          # 1 without a retry object, else 1 + retry.count
    policy.backoff_s(2, rng)     # base * 2 ± 25 %
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..config import RoutingConfig
from ..errors import UpstreamConnectionError, UpstreamFailure, UpstreamTimeout
from ..models import RoutingOptions

DEFAULT_RETRY_ON = frozenset({429})
DEFAULT_FALLBACK_ON = frozenset({408, 429, 500, 502, 503, 504, 529})
TIMEOUT_STATUS = 408  # what a timed-out attempt counts as
JITTER = 0.25


@dataclass(frozen=True, slots=True)
class Policy:
    max_attempts: int
    retry_on: frozenset[int]
    fallback_on: frozenset[int]
    attempt_timeout_s: float
    backoff_base_s: float
    max_retry_after_s: float
    deadline_s: float

    @classmethod
    def of(cls, options: RoutingOptions, settings: RoutingConfig) -> Policy:
        retry = options.retry
        timeout_s = settings.default_timeout_s
        if options.timeout is not None:
            timeout_s = options.timeout.call_timeout / 1000.0
        return cls(
            max_attempts=1 + retry.count if retry is not None else 1,
            retry_on=frozenset(retry.on_codes) if retry is not None else DEFAULT_RETRY_ON,
            fallback_on=frozenset(options.fallback_on_codes or DEFAULT_FALLBACK_ON),
            attempt_timeout_s=timeout_s,
            backoff_base_s=settings.backoff_base_s,
            max_retry_after_s=settings.max_retry_after_s,
            deadline_s=settings.deadline_s,
        )

    def retryable(self, failure: UpstreamFailure) -> bool:
        """Timeouts and broken connections always; HTTP statuses only when in ``on_codes``."""
        if isinstance(failure, UpstreamTimeout | UpstreamConnectionError):
            return True
        return failure.status is not None and failure.status in self.retry_on

    def falls_back(self, failure: UpstreamFailure) -> bool:
        """Timeouts and broken connections always; statuses only in ``fallback_on_codes``."""
        if isinstance(failure, UpstreamTimeout | UpstreamConnectionError):
            return True
        return failure.status is None or failure.status in self.fallback_on

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Wait before retry ``retry`` (1-based): ``base * 2^(retry-1)`` with ±25 % jitter."""
        nominal = self.backoff_base_s * 2.0 ** (retry - 1)
        return nominal * rng.uniform(1 - JITTER, 1 + JITTER)
