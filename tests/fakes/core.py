"""The one framework every fake upstream is built on.

A fake is a ``Recorder`` subclass: a real aiohttp server on 127.0.0.1 (``live.LiveAiohttp``)
that speaks one provider's documented wire format. The base class

- records every request that arrived (``requests``, each a ``Received``; ``received()``
  filters them by scripting key, method or path);
- turns every breach of the wire format a subclass finds into a ``violations`` entry and
  answers it with a 400, so a gateway bug fails the test twice (wrong status, and
  ``violations`` not empty);
- replays scripted ``Reply`` values (optionally keyed by model, deployment, stage...) before
  the fake's normal answer, including faults: delays that notice the caller leaving, connection
  resets and truncated bodies;
- hosts result images like a provider CDN (``host(data)`` → ``<url>/cdn/<name>``).

A subclass adds routes to ``self.app`` and writes one handler per endpoint::

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        problems: list[str] = []
        doc = self.expect_json(received, problems)
        ...check doc, appending to problems...
        return await self.respond(request, received, problems, lambda: {"data": [...]})

and a test drives the gateway against it::

    with FakeXAI() as fake:
        fake.script(Reply(429, {"error": "slow down"}, retry_after="0"))
        ...
        assert fake.violations == []
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import BodyPartReader, web
from fakes.faults import reset_connection, still_connected_after, truncated_json
from live import LiveAiohttp
from waiting import DEADLINE_S, wait_until

__all__ = ["Received", "ReceivedFile", "Recorder", "Reply", "openai_error"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted answer (defaults: 200 at once with the fake's normal body).

    ``body`` None means the fake's normal answer for a status below 400 and a generic error
    body above; bytes are sent as they are. ``delay_s`` waits first, watching the connection
    (a caller that leaves makes the request ``dropped``); ``reset`` closes the connection with
    an RST instead of answering; ``truncate`` promises the body and sends half of it.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    delay_s: float = 0.0
    reset: bool = False
    truncate: bool = False


def openai_error(
    message: str, type_: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    """The error body OpenAI-style APIs answer (``{"error": {message, type, param, code}}``)."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """One file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Received:
    """One request as the fake saw it on the wire."""

    method: str
    path: str
    raw_path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # empty for multipart: its parts are in ``fields`` and ``files``
    json: Any = None  # the body, when it was JSON
    fields: dict[str, list[str]] = field(default_factory=dict)  # multipart text fields
    files: list[ReceivedFile] = field(default_factory=list)  # multipart files, in order
    key: str | None = None  # what scripted replies were looked up by (default: the model)
    outcome: str = "pending"  # answered | rejected | dropped | reset | truncated
    unreadable: str | None = None  # why a multipart body could not be read
    at: float = field(default_factory=time.monotonic)

    def field(self, name: str) -> str | None:
        """The first value of text field ``name``."""
        values = self.fields.get(name)
        return values[0] if values else None

    def file(self, name: str) -> ReceivedFile | None:
        """The first file part named ``name``."""
        return next((f for f in self.files if f.field == name), None)

    @property
    def file_names(self) -> list[str]:
        return [f.field for f in self.files]

    @property
    def values(self) -> dict[str, Any]:
        """The JSON object, or each text field's first value (multipart)."""
        if isinstance(self.json, dict):
            return self.json
        return {k: v[0] for k, v in self.fields.items()}

    @property
    def model(self) -> str | None:
        model = self.values.get("model")
        return model if isinstance(model, str) else None


Success = Callable[[], Any]  # the normal answer: a JSON document or a ready web response


class Recorder:
    """Base of every fake: recording, violations, scripted replies and faults, image hosting."""

    def __init__(self, max_body: int = 64 * 1024 * 1024) -> None:
        self.violations: list[str] = []
        self.downloads = 0  # CDN downloads served
        self.cdn_delay_s = 0.0  # how long the CDN waits before answering a download
        self._log: list[Received] = []
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._then: dict[str | None, Reply] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_get("/cdn/{name}", self._cdn)
        self._server = LiveAiohttp(self.app)

    def __enter__(self) -> Self:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url

    # --- for tests ------------------------------------------------------------------------
    @property
    def requests(self) -> list[Received]:
        """Every request that arrived, in order."""
        return self._log

    def received(
        self, key: str | None = None, *, method: str | None = None, path: str = ""
    ) -> list[Received]:
        """The requests scripted by ``key`` (all when None), of ``method``, whose path
        contains ``path``."""
        with self._lock:
            return [
                r
                for r in self._log
                if (key is None or r.key == key)
                and (method is None or r.method == method)
                and path in r.path
            ]

    def script(self, *replies: Reply, key: str | None = None, then: Reply | None = None) -> None:
        """Queue ``replies`` for requests keyed ``key`` (a model, a deployment, an endpoint...;
        None: any request); once they are used up, answer ``then`` (default: normally)."""
        with self._lock:
            self._scripts.setdefault(key, deque()).extend(replies)
            if then is not None:
                self._then[key] = then

    def reset(self) -> None:
        """Forget requests, violations and scripts (a module-scoped fake between tests)."""
        with self._lock:
            self._log.clear()
            self._scripts.clear()
            self._then.clear()
        self.violations.clear()
        self.downloads = 0

    def wait_for(self, condition: Callable[[], Any], timeout_s: float = DEADLINE_S) -> Any:
        """Poll ``condition`` from the test thread until it holds (AssertionError after
        ``timeout_s``): for what the fake sees after the gateway has answered."""
        return wait_until(condition, "fake upstream condition", timeout_s)

    # --- for subclasses: reading requests ---------------------------------------------------
    async def record(self, request: web.Request, key: str | None = None) -> Received:
        """Read ``request`` (a multipart body into fields and files, any other body as bytes,
        parsed when it is JSON) and record it; ``key`` defaults to the model it names."""
        received = Received(
            request.method,
            request.path,
            request.raw_path,
            dict(request.query),
            dict(request.headers),
        )
        if request.content_type == "multipart/form-data":
            await read_parts(request, received)
        else:
            received.body = await request.read()
            if request.content_type == "application/json":
                try:
                    received.json = json.loads(received.body)
                except ValueError:
                    pass
        received.key = key if key is not None else received.model
        with self._lock:
            self._log.append(received)
        return received

    @staticmethod
    def expect_json(received: Received, problems: list[str]) -> dict[str, Any]:
        """The body as a JSON object; a wrong content type or body goes to ``problems``."""
        ctype = received.headers.get("Content-Type", "")
        if not ctype.startswith("application/json"):
            problems.append(f"content type {ctype!r}, expected application/json")
        if received.json is None and received.body:
            try:
                received.json = json.loads(received.body)
            except ValueError:
                problems.append("body is not JSON")
                return {}
        if not isinstance(received.json, dict):
            problems.append("body is not a JSON object")
            return {}
        return received.json

    @staticmethod
    def expect_multipart(
        received: Received, problems: list[str], repeatable: Collection[str] = ()
    ) -> dict[str, str]:
        """The text fields (first values) of a multipart body; a wrong content type, an
        unreadable body or a part sent twice (unless ``repeatable``) goes to ``problems``."""
        ctype = received.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            problems.append(f"content type {ctype!r}, expected multipart/form-data")
        if received.unreadable:
            problems.append(received.unreadable)
        for name, values in received.fields.items():
            if len(values) > 1 and name not in repeatable:
                problems.append(f"field {name!r} sent {len(values)} times")
        names = received.file_names
        for name in sorted(set(names)):
            if names.count(name) > 1 and name not in repeatable:
                problems.append(f"file part {name!r} sent {names.count(name)} times")
        return {k: v[0] for k, v in received.fields.items()}

    # --- for subclasses: answering ----------------------------------------------------------
    def scripted(self, *keys: str | None, any_key: bool = True) -> Reply | None:
        """The next reply queued for one of ``keys`` (then for any request unless ``any_key``
        is False), else the ``then`` reply of the first key that has one."""
        lookup = (*keys, None) if any_key else keys
        with self._lock:
            for key in lookup:
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
            return next((self._then[k] for k in lookup if k in self._then), None)

    def refuse(
        self, received: Received, problems: list[str], body: Any = None, where: str | None = None
    ) -> web.Response:
        """Record ``problems`` as violations and answer 400 (``body``, or an OpenAI-style
        error naming them)."""
        label = where or f"{received.method} {received.path}"
        self.violations.extend(f"{label}: {p}" for p in problems)
        received.outcome = "rejected"
        if body is None:
            body = openai_error("fake wire violation: " + "; ".join(problems))
        return web.json_response(body, status=400)

    async def answer(
        self,
        request: web.Request,
        received: Received,
        reply: Reply,
        success: Success | None = None,
    ) -> web.StreamResponse:
        """Play ``reply`` (its faults, status, headers; a None body is ``success()`` below
        400) and note on ``received`` what became of the request."""
        if reply.delay_s and not await still_connected_after(request, reply.delay_s):
            received.outcome = "dropped"
            return web.Response(status=499)  # nobody is listening any more
        if reply.reset:
            received.outcome = "reset"
            reset_connection(request)
            return web.Response(status=499)
        body = reply.body
        if body is None:
            if reply.status >= 400:
                body = openai_error(f"fake upstream says {reply.status}", "fake_error")
            else:
                body = success() if success is not None else {}
        if isinstance(body, web.StreamResponse):
            received.outcome = "answered"
            return body
        if reply.truncate:
            received.outcome = "truncated"
            return await truncated_json(request, body)
        received.outcome = "answered"
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers["Retry-After"] = reply.retry_after
        if isinstance(body, bytes):
            return web.Response(body=body, status=reply.status, headers=headers)
        return web.json_response(body, status=reply.status, headers=headers)

    async def respond(
        self,
        request: web.Request,
        received: Received,
        problems: list[str],
        success: Success,
        *,
        error_body: Any = None,
        where: str | None = None,
    ) -> web.StreamResponse:
        """The usual end of a handler: a violation (400 with ``error_body``; ``where`` labels
        the violations), else the reply scripted for ``received.key``, else ``success()``."""
        if problems:
            return self.refuse(received, problems, error_body, where)
        reply = self.scripted(received.key) or Reply()
        return await self.answer(request, received, reply, success)

    def next_id(self, prefix: str = "job") -> str:
        return f"{prefix}-{next(self._ids)}"

    def host(self, data: bytes, content_type: str = "image/png") -> str:
        """Serve ``data`` like a CDN; returns its absolute URL."""
        ext = content_type.split("/")[-1]
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        self._files[name] = (data, content_type)
        return f"{self.url}/cdn/{name}"

    async def _cdn(self, request: web.Request) -> web.Response:
        found = self._files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        self.downloads += 1
        if self.cdn_delay_s:
            await asyncio.sleep(self.cdn_delay_s)
        return web.Response(body=found[0], content_type=found[1])


async def read_parts(request: web.Request, received: Received) -> None:
    """Read a multipart body from the stream into ``received.fields`` and ``.files``."""
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                received.unreadable = "nested multipart"
                continue
            data = bytes(await part.read(decode=False))
            name = part.name or ""
            if part.filename is not None:
                ctype = part.headers.get("Content-Type")
                received.files.append(ReceivedFile(name, part.filename, ctype, data))
            else:
                received.fields.setdefault(name, []).append(data.decode("utf-8"))
    except (ValueError, AssertionError, UnicodeDecodeError) as exc:
        received.unreadable = f"multipart body unreadable ({exc})"
