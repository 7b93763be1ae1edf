"""A fake Replicate predictions API (https://replicate.com/docs/reference/http).

``POST /v1/models/{owner}/{name}/predictions`` (``{"input"}``) or ``POST /v1/predictions``
(``{"version", "input"}``) create a prediction in ``starting``; each ``GET urls.get`` moves it
on (``processing`` for ``running_polls`` polls, then ``succeeded`` with URLs this fake hosts).
``never_finish`` keeps it processing; ``fail_with`` makes the next one fail with that error;
``POST urls.cancel`` cancels it and is recorded in ``cancels``.

Files API (https://replicate.com/docs/reference/http, as replicate-python's ``files.create``
sends it): ``POST /v1/files`` multipart with the bytes in a ``content`` part (filename and
content type) and an optional JSON ``metadata`` field, answered 201 with ``{id, name,
content_type, size, etag, checksums, metadata, created_at, expires_at, urls: {get}}``;
``GET /v1/files/{id}`` answers the same object. A file input is either a ``data:`` URI under
1 MB (Replicate recommends data URIs only below that) or the ``urls.get`` of a file uploaded
here; ``uploads`` lists what was uploaded.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections import deque
from typing import Any

from aiohttp import web
from fakes.core import Recorder, Reply
from imagekit import decode_data_uri, image_of, png

__all__ = ["FakeReplicate", "Reply"]

FLUX_RATIOS = {"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"}
# model → (allowed input keys, aspect ratios, max num_outputs or None, output formats)
SCHEMAS: dict[str, tuple[set[str], set[str], int | None, set[str]]] = {
    "black-forest-labs/flux-schnell": (
        {
            "prompt",
            "aspect_ratio",
            "num_outputs",
            "output_format",
            "seed",
            "go_fast",
            "megapixels",
            "output_quality",
            "disable_safety_checker",
        },
        FLUX_RATIOS,
        4,
        {"webp", "jpg", "png"},
    ),
    "black-forest-labs/flux-1.1-pro": (
        {
            "prompt",
            "aspect_ratio",
            "width",
            "height",
            "output_format",
            "seed",
            "safety_tolerance",
            "prompt_upsampling",
            "output_quality",
            "image_prompt",
        },
        FLUX_RATIOS | {"custom"},
        None,
        {"webp", "jpg", "png"},
    ),
    "black-forest-labs/flux-kontext-pro": (
        {
            "prompt",
            "input_image",
            "aspect_ratio",
            "output_format",
            "seed",
            "safety_tolerance",
            "prompt_upsampling",
        },
        FLUX_RATIOS | {"match_input_image"},
        None,
        {"jpg", "png"},
    ),
    "black-forest-labs/flux-fill-pro": (
        {
            "prompt",
            "image",
            "mask",
            "output_format",
            "seed",
            "steps",
            "guidance",
            "safety_tolerance",
            "prompt_upsampling",
        },
        set(),
        None,
        {"jpg", "png"},
    ),
}
VERSION_RE = re.compile(r"^[0-9a-f]{64}$")
DATA_URI_MAX_BYTES = 1_000_000
MAX_FILE_BYTES = 100_000_000
RUNNING = ("starting", "processing")


class FakeReplicate(Recorder):
    def __init__(self, token: str = "r8_token", running_polls: int = 1) -> None:
        super().__init__()
        self.token = token
        self.running_polls = running_polls
        self.never_finish = False
        self.fail_with: deque[str] = deque()
        self.predictions: dict[str, dict[str, Any]] = {}
        self.cancels: list[str] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.uploads: list[bytes] = []  # the bytes of each POST /v1/files, in order
        router = self.app.router
        router.add_post("/v1/files", self._upload)
        router.add_get("/v1/files/{id}", self._file)
        router.add_post("/v1/models/{owner}/{name}/predictions", self._create)
        router.add_post("/v1/predictions", self._create)
        router.add_get("/v1/predictions/{id}", self._get)
        router.add_post("/v1/predictions/{id}/cancel", self._cancel)

    def providers(self, name: str = "replicate", **extra: Any) -> dict[str, Any]:
        entry = {"api_key": self.token, "base_url": self.url + "/v1", "poll_interval_s": 0.01}
        return {name: {**entry, **extra}}

    def creates(self) -> list[dict[str, Any]]:
        return [
            s.json
            for s in self.requests
            if s.method == "POST" and s.path.endswith("/predictions") and s.json is not None
        ]

    def polls(self) -> int:
        return len([s for s in self.requests if s.method == "GET" and "/predictions/" in s.path])

    def _auth(self, headers: dict[str, str]) -> list[str]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return [f"Authorization is {headers.get('Authorization')!r}"]
        return []

    async def _create(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        problems = self._auth(seen.headers)
        prefer = seen.headers.get("Prefer")
        if prefer is not None and not re.fullmatch(r"wait(=\d+)?", prefer):
            problems.append(f"Prefer header {prefer!r}")
        body = self.expect_json(seen, problems)
        if "owner" in request.match_info:
            model = f"{request.match_info['owner']}/{request.match_info['name']}"
            if set(body) - {"input", "webhook", "webhook_events_filter", "stream"}:
                problems.append(f"unexpected top-level keys {sorted(body)}")
        else:
            model = "version:" + str(body.get("version"))
            if not VERSION_RE.match(str(body.get("version", ""))):
                problems.append(f"version {body.get('version')!r} is not a 64-hex version id")
        payload = body.get("input")
        if not isinstance(payload, dict):
            problems.append("input missing")
            payload = {}
        problems += self._check(model, payload)
        if problems:
            return self.refuse(seen, problems, {"detail": "; ".join(problems)}, f"create {model}")
        scripted = self.scripted(model)
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        pid = self.next_id("pred")
        prediction = {
            "id": pid,
            "model": model,
            "version": "v" * 8,
            "input": payload,
            "status": "starting",
            "output": None,
            "error": None,
            "logs": "",
            "polls": 0,
            "urls": {
                "get": f"{self.url}/v1/predictions/{pid}",
                "cancel": f"{self.url}/v1/predictions/{pid}/cancel",
            },
        }
        self.predictions[pid] = prediction
        return web.json_response(self._public(prediction), status=201)

    # --- Files API --------------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        problems = self._auth(seen.headers)
        self.expect_multipart(seen, problems)
        if seen.file_names != ["content"]:
            problems.append(f"file parts {seen.file_names}, expected one named 'content'")
        if set(seen.fields) - {"metadata"}:
            problems.append(f"unexpected fields {sorted(seen.fields)}")
        if "metadata" in seen.fields:
            try:
                metadata = json.loads(seen.fields["metadata"][0])
            except ValueError:
                metadata = None
            if not isinstance(metadata, dict):
                problems.append("metadata is not a JSON object")
        content = seen.file("content")
        filename, content_type = (
            (content.filename, content.content_type) if content else (None, None)
        )
        data = content.data if content else b""
        if not filename or not content_type:
            problems.append("content part without filename or content type")
        if len(data) > MAX_FILE_BYTES:
            problems.append(f"file of {len(data)} bytes is over {MAX_FILE_BYTES}")
        if problems:
            return self.refuse(seen, problems, {"detail": "; ".join(problems)}, "files.create")
        scripted = self.scripted("files", any_key=False)
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        self.uploads.append(data)
        file_id = base64.urlsafe_b64encode(self.next_id("file").encode()).decode().rstrip("=")
        now = dt.datetime.now(dt.UTC)
        md5 = hashlib.md5(data).hexdigest()
        self.files[file_id] = {
            "id": file_id,
            "name": filename,
            "content_type": content_type,
            "size": len(data),
            "etag": md5,
            "checksums": {"sha256": hashlib.sha256(data).hexdigest(), "md5": md5},
            "metadata": {},
            "created_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "expires_at": (now + dt.timedelta(days=1))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "urls": {"get": f"{self.url}/v1/files/{file_id}"},
            "_data": data,
        }
        return web.json_response(self._file_json(file_id), status=201)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.refuse(seen, problems, {"detail": "Unauthenticated"}, "files.get")
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return web.json_response({"detail": "Not found."}, status=404)
        return web.json_response(self._file_json(file_id))

    def _file_json(self, file_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.files[file_id].items() if not k.startswith("_")}

    def file_input_problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not a file input Replicate takes for an image field."""
        prefix = f"{self.url}/v1/files/"
        if isinstance(value, str) and value.startswith(prefix):
            found = self.files.get(value[len(prefix) :])
            if found is None:
                return f"{name} names a file that was never uploaded"
            if image_of(found["_data"]) is None:
                return f"{name} names a file that is not an image"
            return None
        if decode_data_uri(value) is None:
            return f"{name} is neither a data: URI image nor an uploaded file's URL"
        decoded = len(base64.b64decode(str(value).partition(",")[2]))
        if decoded >= DATA_URI_MAX_BYTES:
            return f"{name} is a data: URI of {decoded} bytes: upload files of 1 MB or more"
        return None

    def _check(self, model: str, payload: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        if not isinstance(payload.get("prompt"), str):
            problems.append("input.prompt missing")
        for name in ("input_image", "image", "mask"):
            if name in payload and (why := self.file_input_problem(name, payload[name])):
                problems.append(why)
        schema = SCHEMAS.get(model)
        if schema is None:
            return problems
        allowed, ratios, max_outputs, formats = schema
        unknown = set(payload) - allowed
        if unknown:
            problems.append(f"unknown inputs {sorted(unknown)}")
        if "aspect_ratio" in payload and payload["aspect_ratio"] not in ratios:
            problems.append(f"aspect_ratio {payload['aspect_ratio']!r}")
        if "num_outputs" in payload:
            n = payload["num_outputs"]
            if max_outputs is None or not isinstance(n, int) or not 1 <= n <= max_outputs:
                problems.append(f"num_outputs {n!r}")
        if "output_format" in payload and payload["output_format"] not in formats:
            problems.append(f"output_format {payload['output_format']!r}")
        return problems

    async def _get(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.refuse(seen, problems, {"detail": "Unauthenticated"}, "get")
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return web.json_response({"detail": "Not found."}, status=404)
        if prediction["status"] in RUNNING and not self.never_finish:
            prediction["polls"] += 1
            if prediction["polls"] <= self.running_polls:
                prediction["status"] = "processing"
            elif self.fail_with:
                prediction["status"], prediction["error"] = "failed", self.fail_with.popleft()
            else:
                self._succeed(prediction)
        return web.json_response(self._public(prediction))

    def _succeed(self, prediction: dict[str, Any]) -> None:
        payload = prediction["input"]
        fmt = {"jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}.get(
            payload.get("output_format", "webp"), ("PNG", "image/png")
        )
        count = int(payload.get("num_outputs", 1))
        urls = [
            self.host(png(f"{prediction['id']}:{i}:{payload.get('prompt')}", 32, fmt[0]), fmt[1])
            for i in range(count)
        ]
        # FLUX schnell/dev answer a list; single-image models a bare string
        many = prediction["model"] in (
            "black-forest-labs/flux-schnell",
            "black-forest-labs/flux-dev",
        )
        prediction["output"] = urls if many else urls[0]
        prediction["status"] = "succeeded"

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.refuse(seen, problems, {"detail": "Unauthenticated"}, "cancel")
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return web.json_response({"detail": "Not found."}, status=404)
        self.cancels.append(prediction["id"])
        if prediction["status"] in RUNNING:
            prediction["status"] = "canceled"
        return web.json_response(self._public(prediction))

    @staticmethod
    def _public(prediction: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in prediction.items() if k not in ("polls", "model")}
