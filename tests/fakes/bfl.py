"""A fake Black Forest Labs FLUX API (https://docs.bfl.ai): async tasks polled by id.

``POST /v1/{model}`` with header ``x-key`` answers ``{id, polling_url}``; ``GET polling_url``
(``/v1/get_result?id=``) answers ``Pending`` ``pending_polls`` times, then ``Ready`` with
``result.sample`` pointing at an image this fake hosts. ``never_ready`` keeps a task pending
forever (timeout tests); ``final`` queues other final statuses (``Content Moderated``...)::

    with FakeBFL() as fake:
        config = make_config(providers=fake.providers())
"""

from __future__ import annotations

import base64
import re
from collections import deque
from typing import Any

from aiohttp import web
from fakes.core import Recorder, Reply
from imagekit import decode_b64, image_of, png

__all__ = ["FakeBFL", "Reply"]

COMMON = {
    "prompt",
    "seed",
    "output_format",
    "safety_tolerance",
    "prompt_upsampling",
    "webhook_url",
    "webhook_secret",
}
WH = {
    "flux-pro-1.1": (32, 256, 1440),
    "flux-pro": (32, 256, 1440),
    "flux-dev": (32, 256, 1440),
    "flux-2-pro": (16, 64, 2048),
    "flux-2-max": (16, 64, 2048),
    "flux-2-flex": (16, 64, 2048),
}
# FLUX.2: at most 4 MP, BFL's megapixel being 1024x1024 ("4 megapixels (e.g., 2048x2048)",
# https://help.bfl.ai/articles/4029171097-flux-2-technical-specifications)
MAX_PIXELS = {"flux-2-pro": 2048 * 2048, "flux-2-max": 2048 * 2048, "flux-2-flex": 2048 * 2048}
RATIO = {"flux-pro-1.1-ultra", "flux-kontext-pro", "flux-kontext-max"}
FILL = {"flux-pro-1.0-fill"}
RATIO_RE = re.compile(r"^(\d+):(\d+)$")


def _inputs(model: str) -> set[str]:
    if model.startswith("flux-2"):
        return {"input_image"} | {f"input_image_{i}" for i in range(2, 9)}
    if model.startswith("flux-kontext"):
        return {"input_image"} | {f"input_image_{i}" for i in range(2, 5)}
    return set()


class FakeBFL(Recorder):
    def __init__(self, api_key: str = "bfl-key", pending_polls: int = 1) -> None:
        super().__init__()
        self.api_key = api_key
        self.pending_polls = pending_polls
        self.never_ready = False
        self.final: deque[str] = deque()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.app.router.add_get("/v1/get_result", self._result)
        self.app.router.add_post("/v1/{model}", self._submit)

    def providers(self, name: str = "bfl", **extra: Any) -> dict[str, Any]:
        entry = {"api_key": self.api_key, "base_url": self.url, "poll_interval_s": 0.01}
        return {name: {**entry, **extra}}

    def submits(self) -> list[dict[str, Any]]:
        return [s.json for s in self.received(method="POST") if s.json is not None]

    def polls(self) -> int:
        return len(self.received(method="GET", path="/v1/get_result"))

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        model = request.match_info["model"]
        problems: list[str] = []
        if seen.headers.get("x-key") != self.api_key:
            problems.append(f"x-key is {seen.headers.get('x-key')!r}")
        if "Authorization" in seen.headers:
            problems.append("BFL authenticates with x-key, not Authorization")
        if model not in WH and model not in RATIO and model not in FILL:
            return web.json_response({"detail": "Not Found"}, status=404)
        body = self.expect_json(seen, problems)
        problems += self._check(model, body)
        if problems:
            return self.refuse(seen, problems, {"detail": problems}, f"POST {model}")
        scripted = self.scripted(model)
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        task_id = self.next_id("task")
        self.tasks[task_id] = {"model": model, "body": body, "polls": 0}
        polling_url = f"{self.url}/v1/get_result?id={task_id}"
        return web.json_response({"id": task_id, "polling_url": polling_url, "cost": 4.0})

    def _check(self, model: str, body: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        allowed = set(COMMON) | _inputs(model)
        if model in WH:
            allowed |= {"width", "height", "image_prompt"}
        if model in RATIO:
            allowed |= {"aspect_ratio", "raw", "image_prompt", "image_prompt_strength"}
        if model in FILL:
            allowed |= {"image", "mask", "steps", "guidance"}
        unknown = set(body) - allowed
        if unknown:
            problems.append(f"unknown fields {sorted(unknown)}")
        if model not in FILL and not isinstance(body.get("prompt"), str):
            problems.append("prompt missing")
        if model in WH:
            step, lo, hi = WH[model]
            for name in ("width", "height"):
                value = body.get(name)
                if value is None:
                    continue
                if not isinstance(value, int) or value % step or not lo <= value <= hi:
                    problems.append(f"{name}={value!r}: not a multiple of {step} in {lo}..{hi}")
            w, h = body.get("width"), body.get("height")
            cap = MAX_PIXELS.get(model)
            if cap and isinstance(w, int) and isinstance(h, int) and w * h > cap:
                problems.append(f"{w}x{h} is over {cap} pixels")
        if "aspect_ratio" in body:
            m = RATIO_RE.match(str(body["aspect_ratio"]))
            if not m or not 9 / 21 <= int(m[1]) / int(m[2]) <= 21 / 9:
                problems.append(f"aspect_ratio {body['aspect_ratio']!r} outside 21:9..9:21")
        if body.get("output_format") not in (None, "jpeg", "png"):
            problems.append(f"output_format {body['output_format']!r}")
        if "seed" in body and not isinstance(body["seed"], int):
            problems.append("seed is not an integer")
        for name in _inputs(model) | ({"image", "mask"} & set(body)):
            if name in body and decode_b64(body[name]) is None:
                problems.append(f"{name} is not a base64 image")
        if model in FILL and "image" not in body:
            problems.append("fill needs image")
        return problems

    async def _result(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if seen.headers.get("x-key") != self.api_key:
            return self.refuse(seen, ["x-key missing on poll"], {"detail": "x-key"}, "get_result")
        scripted = self.scripted("poll", any_key=False)
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        task_id = request.query.get("id", "")
        task = self.tasks.get(task_id)
        if task is None:
            return web.json_response({"id": task_id, "status": "Task not found"})
        task["polls"] += 1
        if self.never_ready or task["polls"] <= self.pending_polls:
            return web.json_response(
                {"id": task_id, "status": "Pending", "result": None, "progress": 0.4}
            )
        if self.final:
            status = self.final.popleft()
            return web.json_response(
                {
                    "id": task_id,
                    "status": status,
                    "result": None,
                    "details": {"Moderation Reasons": ["Derivative Works Filter"]},
                }
            )
        body = task["body"]
        fmt = "JPEG" if body.get("output_format") == "jpeg" else "PNG"
        side = 32
        if "input_image" in body or "image" in body:  # edits keep the input's size
            src = image_of(base64.b64decode(body.get("input_image") or body["image"]))
            side = src.size[0] if src is not None else side
        data = png(f"{task['model']}:{body.get('prompt')}:{task_id}", side, fmt)
        sample = self.host(data, "image/jpeg" if fmt == "JPEG" else "image/png")
        result = {"sample": sample, "prompt": body.get("prompt"), "seed": body.get("seed", 42)}
        return web.json_response({"id": task_id, "status": "Ready", "result": result})
