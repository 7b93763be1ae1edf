"""A fault-injecting fake image provider speaking OpenAI's images wire format over real HTTP.

One server plays many providers: ``POST /<name>/v1/images/{generations,edits,variations}``,
so ``providers={"a": {"type": "openai-compatible", "base_url": fake.url + "/a/v1"}}`` makes
gateway model ``a/m1`` arrive here as provider ``a``, model ``m1``; its requests are keyed
``a/m1``. Each model follows a script of replies (status, delay, Retry-After, connection reset,
truncated body), then answers 200 with a tiny real PNG. Every request is recorded, with what
became of it (``outcome``)::

    with FaultyUpstream() as fake:
        fake.script("a/m1", fail(503), fail(429, retry_after="0.2"))   # then ok
        ...
        assert [r.outcome for r in fake.received("a/m1")] == ["answered"] * 3

A delay watches the connection: when the caller goes away mid-delay the request is recorded
as ``dropped`` (this is how tests prove that cancellation reaches the upstream).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web
from fakes.core import Received, Recorder, Reply, openai_error
from imagekit import png

__all__ = ["FaultyUpstream", "fail", "hang", "ok", "reset", "truncated"]

OPERATIONS = ("generations", "edits", "variations")
PNG = png("faulty", 8)


def ok(delay_s: float = 0.0) -> Reply:
    return Reply(delay_s=delay_s)


def fail(
    status: int, *, retry_after: str | None = None, message: str | None = None, delay_s: float = 0.0
) -> Reply:
    body = openai_error(message or f"fake upstream says {status}", "fake_error")
    return Reply(status, body, retry_after=retry_after, delay_s=delay_s)


def hang(delay_s: float) -> Reply:
    """Answer 200, but only after ``delay_s`` (for per-attempt timeouts)."""
    return Reply(delay_s=delay_s)


def reset() -> Reply:
    """Drop the connection (RST) without answering."""
    return Reply(reset=True)


def truncated() -> Reply:
    """Promise a body, send half of it, close."""
    return Reply(truncate=True)


class FaultyUpstream(Recorder):
    """The fake server; use as a context manager (a real aiohttp server in its own thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/{name}/v1/images/{operation}", self._handle)

    def providers(self, *names: str) -> dict[str, dict[str, str]]:
        """``providers`` config entries pointing ``<name>/...`` models at this server."""
        return {n: {"type": "openai-compatible", "base_url": f"{self.url}/{n}/v1"} for n in names}

    def script(  # type: ignore[override]  # the model comes first: every call names one
        self, model: str, *replies: Reply, then: Reply | None = None
    ) -> None:
        """Answer the next requests for ``model`` with ``replies`` (replacing what was left
        of its script); afterwards with ``then`` (default: 200 at once)."""
        with self._lock:
            self._scripts.pop(model, None)
            self._then.pop(model, None)
        super().script(*replies, key=model, then=then)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name, operation = request.match_info["name"], request.match_info["operation"]
        if operation not in OPERATIONS:
            return web.json_response({"error": {"message": "unknown operation"}}, status=404)
        received = await self.record(request)
        received.key = f"{name}/{received.model}"
        problems = _problems(operation, received)
        if problems:
            body = openai_error("fake upstream: " + "; ".join(problems), "fake_error")
            return self.refuse(received, problems, body, where=received.key)
        reply = self.scripted(received.key, any_key=False) or Reply()
        return await self.answer(request, received, reply, lambda: _image_body(received))


def _problems(operation: str, received: Received) -> list[str]:
    """What OpenAI would refuse in this request (the fake checks only the essentials)."""
    problems: list[str] = []
    if operation == "generations":
        doc = Recorder.expect_json(received, problems)
        if doc and not isinstance(doc.get("prompt"), str):
            problems.append("'prompt' (string) is required")
        if doc and not isinstance(doc.get("model"), str):
            problems.append("'model' (string) is required")
        return problems
    Recorder.expect_multipart(received, problems, repeatable={"image[]"})
    if not isinstance(received.field("model"), str):
        problems.append("'model' is required")
    if not any(name.startswith("image") for name in received.file_names):
        problems.append("an 'image' file is required")
    return problems


def _image_body(received: Received) -> dict[str, Any]:
    n = int(float(received.values.get("n") or 1))
    b64 = base64.b64encode(PNG).decode("ascii")
    return {"created": int(time.time()), "data": [{"b64_json": b64} for _ in range(n)]}
