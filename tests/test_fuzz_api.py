"""Property-based fuzzing of every route in ``/openapi.json`` against a real gateway over HTTP.

schemathesis generates valid and invalid requests from the OpenAPI document (query and path
parameters, JSON and multipart bodies), sends them through uvicorn and checks that nothing is a
5xx, that every status, content type, header and body matches what the document declares, that
routes needing a key refuse requests without one, and (control plane and files) that invalid
input is refused. Deterministic: a fixed seed, hypothesis ``derandomize`` and no example
database, so CI sees the same cases on every run. Bounded: 15 fuzzed examples per operation;
the coverage phase (boundary and type-violation cases from the schema) runs on the canonical
``/v2/router`` prefix and the control plane, the four alias prefixes (same handlers) get 5.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from imagekit import solid
from live import LiveGateway, live_gateway
from schemathesis.checks import not_a_server_error

from imagegate.api.app import routes
from imagegate.api.openapi import build_openapi, route_paths
from imagegate.config import load_config

KEY = "sk-fuzz"
ALIASES = "^/(v3/router|v2/gateway|v2/proxy|v1)/images/"
# Text that looks numeric to Python but not to int()/float() (or to PostgreSQL): superscript
# and Arabic-Indic digits, NUL, over 4300 digits, nan/inf... drawn for every parameter below
# and, now and then, for any string in a body, so the defensive parsing stays enforced.
HOSTILE = [
    "²",
    "١٢",
    "𝟙",
    "\x00",
    "a\x00b",
    "\x1b",
    "\u0085",
    "1" * 5000,
    "9" * 20,
    "nan",
    "1e999",
    "-1",
    "",
    " 1",
    "1.5",
    "0x10",
    "latest\n",
    "ＡＢＣ",
    "²x²",
    "١٦x١٦",
    "16x16",
]
# Integers past 64 bits (SQLite, PostgreSQL and orjson stop there).
HUGE = [2**63, -(2**63) - 1, 10**30]
HOSTILE_PARAMS = [
    ("query", n)
    for n in (
        "limit",
        "cursor",
        "status",
        "cache",
        "since",
        "until",
        "expires",
        "sig",
        "identity_id",
        "thread_id",
        "name",
        "model",
        "group_by",
        "from",
        "to",
        "workspace",
    )
] + [
    ("path", n)
    for n in (
        "key",
        "version",
        "trace_id",
        "identity_id",
        "thread_id",
        "prompt_id",
        "workspace_id",
        "key_id",
    )
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260101,
        "auth": {"openapi": {"ApiKey": {"bearer": KEY}}},
        "dictionaries": {"hostile": {"values": HOSTILE}, "huge": {"values": HUGE}},
        "parameters": {
            f"{where}.{name}": {"dictionary": "hostile", "probability": 0.25}
            for where, name in HOSTILE_PARAMS
        },
        "generation": {
            "dictionaries": {
                "string": {"dictionary": "hostile", "probability": 0.05},
                "integer": {"dictionary": "huge", "probability": 0.05},
            },
            "mode": "all",
            "max-examples": 15,
            "deterministic": True,  # hypothesis derandomize
            "database": "none",
            "with-security-parameters": False,  # the key comes from ``auth`` above
        },
        "checks": {
            # A schema cannot say "the provider must be configured" or "template is required
            # with model", so schema-valid bodies may rightly be a 400.
            "positive_data_acceptance": {"enabled": False},
        },
        "operations": [
            {
                "include-path-regex": ALIASES,
                "phases": {"coverage": {"enabled": False}},
                "generation": {"max-examples": 5},
            },
            {  # variations share edits' fields and multipart path; fuzzing is enough there
                "include-path-regex": "^/v2/router/images/variations$",
                "phases": {"coverage": {"enabled": False}},
            },
            {
                # The image API accepts more than its schema on purpose (docs/api.md "What the
                # server accepts"): numbers as text or floats, null anywhere, bracket names.
                # Its bodies have ~40 fields, so coverage keeps to the invalid cases (~500 per
                # operation instead of ~1000); fuzzing still draws valid ones.
                "include-path-regex": "/images/",
                "checks": {"negative_data_rejection": {"enabled": False}},
                "phases": {"coverage": {"generation": {"mode": "negative"}}},
            },
        ],
    }
)
SPEC = build_openapi(route_paths(routes()))  # what GET /openapi.json serves (checked below)
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)


PNG = solid(16, (200, 40, 90))


class ErrorLog(logging.Handler):
    """Keeps every ERROR record (tracebacks included) the gateway logs while the fuzzer runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = load_config(
        env={},
        overrides={
            "data_dir": str(tmp),
            "storage": {"path": str(tmp / "blobs")},
            "api_keys": [KEY],
        },
    )
    with live_gateway(config) as gw:
        yield gw


@pytest.fixture(scope="module")
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def test_the_fuzzed_document_is_the_served_one(gateway: LiveGateway) -> None:
    r = requests.get(f"{gateway.url}/openapi.json", timeout=10)
    assert r.status_code == 200 and r.json() == SPEC


def _runnable(case: schemathesis.Case) -> None:
    """Schema-valid multipart cases get a real PNG and a placeholder model, so the fuzzer's
    field values travel past the image check into routing and the provider, not only to the
    first 400; placeholder requests without a size draw small images to keep the run short."""
    body = case.body
    if not isinstance(body, dict):
        return
    if str(body.get("model", "")).startswith("placeholder/") and body.get("size") is None:
        body["size"] = "32x32"  # the default 1024x1024 costs ~50 ms of drawing per image
    if "image" not in body or case.meta is None or not case.meta.generation.mode.is_positive:
        return
    body["image"] = [PNG] if isinstance(body["image"], list) else PNG
    if "mask" in body:
        body["mask"] = PNG
    body["model"] = "placeholder/fuzz"


def _asked_for_a_timeout(case: schemathesis.Case, response: requests.Response) -> bool:
    """A 504 ``provider_timeout`` is the documented answer when the caller's own
    ``timeout.call_timeout`` (1 ms and up) is shorter than the provider needs."""
    if response.status_code != 504:
        return False
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code == "provider_timeout" and "call_timeout" in repr(case.body)


@schema.parametrize()
def test_api(
    case: schemathesis.Case,
    gateway: LiveGateway,
    session: requests.Session,
    error_log: ErrorLog,
) -> None:
    _runnable(case)
    response = case.call(base_url=gateway.url, session=session, timeout=30)
    excluded = [not_a_server_error] if _asked_for_a_timeout(case, response) else []
    case.validate_response(response, excluded_checks=excluded)
    logged = [f"{r.name}: {r.getMessage()}" for r in error_log.records]
    error_log.records.clear()
    assert not logged, f"{case.method} {case.formatted_path}: the gateway logged {logged}"
