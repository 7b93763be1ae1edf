"""A fake Replicate predictions API (https://replicate.com/docs/reference/http).

``POST /v1/models/{owner}/{name}/predictions`` (``{"input"}``) or ``POST /v1/predictions``
(``{"version", "input"}``) create a prediction in ``starting``; each ``GET urls.get`` moves it
on (``processing`` for ``running_polls`` polls, then ``succeeded`` with URLs this fake hosts).
``never_finish`` keeps it processing; ``fail_with`` makes the next one fail with that error;
``POST urls.cancel`` cancels it and is recorded in ``cancels``.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from aiohttp import web
from fakes.recorder import FakeUpstream, Reply, decode_data_uri, png

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
RUNNING = ("starting", "processing")


class FakeReplicate(FakeUpstream):
    def __init__(self, token: str = "r8_token", running_polls: int = 1) -> None:
        super().__init__()
        self.token = token
        self.running_polls = running_polls
        self.never_finish = False
        self.fail_with: deque[str] = deque()
        self.predictions: dict[str, dict[str, Any]] = {}
        self.cancels: list[str] = []
        router = self.app.router
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
            for s in self.seen
            if s.method == "POST" and s.path.endswith("/predictions") and s.json is not None
        ]

    def polls(self) -> int:
        return len([s for s in self.seen if s.method == "GET" and "/predictions/" in s.path])

    def _auth(self, headers: dict[str, str]) -> list[str]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return [f"Authorization is {headers.get('Authorization')!r}"]
        return []

    async def _create(self, request: web.Request) -> web.Response:
        seen = await self.record(request)
        problems = self._auth(seen.headers)
        prefer = seen.headers.get("Prefer")
        if prefer is not None and not re.fullmatch(r"wait(=\d+)?", prefer):
            problems.append(f"Prefer header {prefer!r}")
        body = self.parse_json(seen, problems)
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
            return self.violation(f"create {model}", problems, {"detail": "; ".join(problems)})
        scripted = self.scripted(model)
        if scripted is not None:
            return await self.reply(scripted)
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

    @staticmethod
    def _check(model: str, payload: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        if not isinstance(payload.get("prompt"), str):
            problems.append("input.prompt missing")
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
        for name in ("input_image", "image", "mask"):
            if name in payload and decode_data_uri(payload[name]) is None:
                problems.append(f"{name} is not a data: URI image")
        return problems

    async def _get(self, request: web.Request) -> web.Response:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.violation("get", problems, {"detail": "Unauthenticated"})
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
        many = prediction["model"] in ("black-forest-labs/flux-schnell",)
        prediction["output"] = urls if many else urls[0]
        prediction["status"] = "succeeded"

    async def _cancel(self, request: web.Request) -> web.Response:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.violation("cancel", problems, {"detail": "Unauthenticated"})
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
