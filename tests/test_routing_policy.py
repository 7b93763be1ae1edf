"""The per-request rules resolved from options and config: attempts, codes, timeouts, backoff.

The rules: docs/routing.md, sections `retry`, `fallback_on_codes`, `timeout` and "The overall
deadline".
"""

from __future__ import annotations

import random
import statistics

from imagegate.config import RoutingConfig
from imagegate.errors import UpstreamConnectionError, UpstreamHTTPError, UpstreamTimeout
from imagegate.options import build_request
from imagegate.routing.policy import DEFAULT_FALLBACK_ON, Policy

SETTINGS = RoutingConfig(backoff_base_s=1.0, default_timeout_s=600, deadline_s=900)


def policy(**body: object) -> Policy:
    request = build_request("generations", {"model": "a/m", "prompt": "p", **body})
    return Policy.of(request.options, SETTINGS)


def test_without_retry_object_one_attempt_and_config_timeout() -> None:
    p = policy()
    assert p.max_attempts == 1
    assert p.attempt_timeout_s == 600
    assert p.fallback_on == DEFAULT_FALLBACK_ON == {408, 429, 500, 502, 503, 504, 529}


def test_retry_object_defaults_and_floats() -> None:
    assert policy(orq={"retry": {}}).max_attempts == 4  # count defaults to 3
    p = policy(
        orq={"retry": {"count": 2.0, "on_codes": [503.0]}, "timeout": {"call_timeout": 1500.0}}
    )
    assert (p.max_attempts, p.retry_on, p.attempt_timeout_s) == (3, {503}, 1.5)


def test_retryable_and_fallback_judgement() -> None:
    p = policy(orq={"retry": {"count": 1}}, fallback_on_codes=[418])
    assert p.retryable(UpstreamHTTPError("x", status=429))
    assert not p.retryable(UpstreamHTTPError("x", status=503))
    assert p.retryable(UpstreamTimeout("t")) and p.retryable(UpstreamConnectionError("c"))
    assert p.falls_back(UpstreamHTTPError("x", status=418))
    assert not p.falls_back(UpstreamHTTPError("x", status=503))  # the override replaces
    assert p.falls_back(UpstreamTimeout("t")) and p.falls_back(UpstreamConnectionError("c"))


def test_backoff_doubles_with_quarter_jitter() -> None:
    p = policy(orq={"retry": {"count": 5}})
    rng = random.Random(42)
    for k, nominal in enumerate((1, 2, 4, 8, 16), start=1):
        waits = [p.backoff_s(k, rng) for _ in range(2000)]
        assert min(waits) >= 0.75 * nominal and max(waits) <= 1.25 * nominal
        assert abs(statistics.mean(waits) - nominal) < 0.03 * nominal
        assert statistics.pstdev(waits) > 0.1 * nominal  # jitter is really there
