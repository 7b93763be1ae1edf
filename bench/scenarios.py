"""The image-shaped scenarios, their request bodies, and the run settings (full/quick/smoke).

Every body carries the orq routing options a real client sends (``retry``, ``fallbacks``,
``name``, ``metadata``) so the gateway's validation and planning run as in production; the
direct target gets the same bytes (the fake upstream ignores what it does not know).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from .upstream import noise_png

Kind = Literal["throughput", "memory", "soak"]
BOUNDARY = "imagegate-bench-7c1e9a"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
ROUTING: dict[str, Any] = {
    "name": "bench",
    "metadata": {"suite": "bench"},
    "retry": {"count": 2, "on_codes": [429, 503]},
    "fallbacks": [{"model": "openai/bench-fallback"}],
}


@dataclass(frozen=True)
class Settings:
    """How long and how hard: ``full`` (make bench), ``quick`` to iterate, ``smoke`` for CI."""

    duration_s: float = 10.0
    warmup_s: float = 2.0
    concurrency: tuple[int, ...] = (1, 32)
    edit_bytes: int = 1_000_000
    big_edit_bytes: int = 20_000_000
    big_edit_concurrency: int = 10
    big_edit_duration_s: float = 10.0  # each 20 MB upload takes a while: keep the window long
    soak_requests: int = 2_000
    soak_latency_ms: int = 10_000
    soak_ramp_s: float = 2.0  # start the soak's requests over this long (all still overlap)
    prefer_wrk: bool = True
    fresh_gateway: bool = True  # a new gateway process (and data dir) per scenario
    settle_s: float = 0.3  # quiet time that ends a CPU window (deferred work is counted)

    @classmethod
    def preset(cls, name: str) -> Settings:
        if name == "quick":
            return cls(
                duration_s=3.0,
                warmup_s=1.0,
                concurrency=(1, 32),
                soak_requests=500,
                soak_latency_ms=3_000,
                soak_ramp_s=1.0,
                big_edit_duration_s=8.0,
            )
        if name == "smoke":
            return cls(
                duration_s=0.4,
                warmup_s=0.0,
                concurrency=(2,),
                edit_bytes=64_000,
                big_edit_bytes=512_000,
                big_edit_concurrency=2,
                big_edit_duration_s=0.4,
                soak_requests=20,
                soak_latency_ms=300,
                soak_ramp_s=0.0,
                prefer_wrk=False,
                fresh_gateway=False,
                settle_s=0.1,
            )
        return cls()

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    operation: Literal["generations", "edits"]
    kind: Kind
    targets: tuple[str, ...]  # target kinds this scenario runs on
    floor: str  # the direct scenario its added latency is measured against


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "small",
        "small JSON generation (~1 KB b64)",
        "generations",
        "throughput",
        ("direct", "imagegate", "litellm"),
        "small",
    ),
    Scenario(
        "large",
        "1.5 MB b64 response",
        "generations",
        "throughput",
        ("direct", "imagegate", "litellm"),
        "large",
    ),
    Scenario(
        "url",
        "url response (image store path)",
        "generations",
        "throughput",
        ("direct", "imagegate"),
        "url",
    ),
    Scenario(
        "edit",
        "1 MB multipart edit",
        "edits",
        "throughput",
        ("direct", "imagegate", "litellm"),
        "edit",
    ),
    Scenario(
        "edit20",
        "20 MB multipart edits at 10 concurrent",
        "edits",
        "memory",
        ("imagegate",),
        "edit20",
    ),
    Scenario("cache", "cache hit (memory)", "generations", "throughput", ("imagegate",), "small"),
    Scenario(
        "soak", "soak: 2,000 in-flight 10 s requests", "generations", "soak", ("imagegate",), "soak"
    ),
)
BY_NAME = {s.name: s for s in SCENARIOS}


def generation(model: str, size: str, response_format: str, **orq: Any) -> bytes:
    body = {
        "model": model,
        "prompt": "a red fox sitting in fresh snow, watercolor",
        "n": 1,
        "size": size,
        "response_format": response_format,
        "orq": {**ROUTING, **orq},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def image_bytes(n: int) -> bytes:
    """PNG headers then noise: passes the magic-byte and pixel checks, does not compress."""
    return noise_png(n)


def multipart_edit(model: str, image_size: int) -> bytes:
    fields = {
        "model": model,
        "prompt": "add a small red hat",
        "n": "1",
        "size": "256x256",
        "response_format": "b64_json",
    }
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="orq"\r\n'
        f"Content-Type: application/json\r\n\r\n{json.dumps(ROUTING)}\r\n".encode()
    )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + image_bytes(image_size)
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def body_for(scenario: Scenario, settings: Settings) -> tuple[bytes, str]:
    """The request body and content type of ``scenario``."""
    json_type = "application/json"
    if scenario.name == "small":
        return generation("openai/dall-e-2", "256x256", "b64_json"), json_type
    if scenario.name == "large":
        return generation("openai/dall-e-2", "1024x1024", "b64_json"), json_type
    if scenario.name == "url":  # gpt-image answers base64; the gateway must store and link it
        return generation("openai/gpt-image-1", "1024x1024", "url"), json_type
    if scenario.name == "cache":
        cache = {"type": "exact_match", "ttl": 3600}
        return generation("openai/dall-e-2", "256x256", "b64_json", cache=cache), json_type
    if scenario.name == "soak":
        model = f"openai/slow-{settings.soak_latency_ms}"
        return generation(model, "256x256", "b64_json"), json_type
    if scenario.name == "edit":
        return multipart_edit("openai/dall-e-2", settings.edit_bytes), MULTIPART
    if scenario.name == "edit20":
        return multipart_edit("openai/dall-e-2", settings.big_edit_bytes), MULTIPART
    raise KeyError(scenario.name)


def write_body(scenario: Scenario, settings: Settings, directory: Path) -> tuple[Path, str]:
    body, content_type = body_for(scenario, settings)
    path = directory / f"body-{scenario.name}.bin"
    path.write_bytes(body)
    return path, content_type
