"""A fake fal API: the queue (https://docs.fal.ai/model-apis/model-endpoints/queue) and sync runs.

Queue, under ``/queue``: ``POST /queue/{model}`` → ``{request_id, status_url, response_url,
cancel_url}`` where the URLs use the app id (first two segments of the model id) like fal;
``GET .../requests/{id}/status`` answers ``IN_QUEUE``, ``IN_PROGRESS`` (``running_polls``
times) then ``COMPLETED``; ``GET .../requests/{id}`` the result; ``PUT .../cancel``. Sync runs
under ``/sync``: ``POST /sync/{model}`` answers the result directly. Results carry
``images[].url`` served by this fake, and ``has_nsfw_concepts``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp import web
from fakes.core import Recorder, Reply
from imagekit import decode_data_uri, png

__all__ = ["FakeFal", "Reply"]

PRESETS = {
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
}
COMMON = {
    "prompt",
    "seed",
    "output_format",
    "num_images",
    "enable_safety_checker",
    "sync_mode",
    "num_inference_steps",
    "guidance_scale",
}
SCHEMAS: dict[str, set[str]] = {
    "fal-ai/flux/dev": COMMON | {"image_size"},
    "fal-ai/flux/schnell": COMMON | {"image_size"},
    "fal-ai/flux-pro/v1.1-ultra": COMMON | {"aspect_ratio", "raw", "safety_tolerance"},
    "fal-ai/flux-pro/kontext": COMMON | {"image_url", "aspect_ratio", "safety_tolerance"},
    "fal-ai/flux-lora/inpainting": COMMON | {"image_url", "mask_url", "strength", "image_size"},
}
PENDING = ("IN_QUEUE", "IN_PROGRESS")


class FakeFal(Recorder):
    def __init__(self, key: str = "fal-key", running_polls: int = 1) -> None:
        super().__init__()
        self.key = key
        self.running_polls = running_polls
        self.never_finish = False
        self.nsfw: deque[list[bool]] = deque()  # has_nsfw_concepts for the next results
        self.jobs: dict[str, dict[str, Any]] = {}
        self.cancels: list[str] = []
        router = self.app.router
        router.add_get("/queue/{owner}/{app}/requests/{rid}/status", self._status)
        router.add_get("/queue/{owner}/{app}/requests/{rid}", self._response)
        router.add_put("/queue/{owner}/{app}/requests/{rid}/cancel", self._cancel)
        router.add_post("/queue/{model:.+}", self._submit)
        router.add_post("/sync/{model:.+}", self._sync)

    def providers(self, name: str = "fal", **extra: Any) -> dict[str, Any]:
        entry = {
            "api_key": self.key,
            "base_url": self.url + "/sync",
            "queue_url": self.url + "/queue",
            "poll_interval_s": 0.01,
        }
        return {name: {**entry, **extra}}

    def inputs(self) -> list[dict[str, Any]]:
        return [s.json for s in self.received(method="POST") if s.json is not None]

    def polls(self) -> int:
        return len([s for s in self.requests if s.path.endswith("/status")])

    def _auth(self, headers: dict[str, str]) -> list[str]:
        if headers.get("Authorization") != f"Key {self.key}":
            return [f"Authorization is {headers.get('Authorization')!r}, expected 'Key <key>'"]
        return []

    async def _accept(
        self, request: web.Request
    ) -> tuple[str, dict[str, Any], web.StreamResponse | None]:
        seen = await self.record(request)
        model = request.match_info["model"]
        problems = self._auth(seen.headers)
        body = self.expect_json(seen, problems)
        problems += self._check(model, body)
        if problems:
            return model, body, self.refuse(seen, problems, {"detail": problems}, model)
        scripted = self.scripted(model)
        if scripted is not None:
            return model, body, await self.answer(request, seen, scripted)
        return model, body, None

    @staticmethod
    def _check(model: str, body: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        allowed = SCHEMAS.get(model)
        if allowed is not None and set(body) - allowed:
            problems.append(f"unknown inputs {sorted(set(body) - allowed)}")
        if not isinstance(body.get("prompt"), str):
            problems.append("prompt missing")
        size = body.get("image_size")
        if (
            size is not None
            and not (isinstance(size, str) and size in PRESETS)
            and not (
                isinstance(size, dict)
                and set(size) == {"width", "height"}
                and all(isinstance(v, int) and v > 0 for v in size.values())
            )
        ):
            problems.append(f"image_size {size!r}")
        n = body.get("num_images", 1)
        if not isinstance(n, int) or not 1 <= n <= 4:
            problems.append(f"num_images {n!r}")
        if body.get("output_format") not in (None, "jpeg", "png"):
            problems.append(f"output_format {body['output_format']!r}")
        for name in ("image_url", "mask_url"):
            if name in body and decode_data_uri(body[name]) is None:
                problems.append(f"{name} is not a data: URI image")
        return problems

    def _result(self, model: str, body: dict[str, Any], rid: str) -> dict[str, Any]:
        n = int(body.get("num_images", 1))
        jpeg = body.get("output_format") == "jpeg"
        images = []
        for i in range(n):
            data = png(f"{model}:{rid}:{i}:{body.get('prompt')}", 32, "JPEG" if jpeg else "PNG")
            ctype = "image/jpeg" if jpeg else "image/png"
            images.append(
                {"url": self.host(data, ctype), "width": 32, "height": 32, "content_type": ctype}
            )
        flags = self.nsfw.popleft() if self.nsfw else [False] * n
        return {
            "images": images,
            "seed": body.get("seed", 1234),
            "prompt": body.get("prompt"),
            "has_nsfw_concepts": flags,
            "timings": {"inference": 0.01},
        }

    async def _sync(self, request: web.Request) -> web.StreamResponse:
        model, body, early = await self._accept(request)
        if early is not None:
            return early
        return web.json_response(self._result(model, body, self.next_id("sync")))

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        model, body, early = await self._accept(request)
        if early is not None:
            return early
        rid = self.next_id("req")
        app = "/".join(model.split("/")[:2])
        base = f"{self.url}/queue/{app}/requests/{rid}"
        self.jobs[rid] = {"model": model, "body": body, "polls": 0, "status": "IN_QUEUE"}
        return web.json_response(
            {
                "request_id": rid,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            }
        )

    async def _status(self, request: web.Request) -> web.Response:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.refuse(seen, problems, {"detail": "auth"}, "status")
        job = self.jobs.get(request.match_info["rid"])
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if job["status"] in PENDING and not self.never_finish:
            job["polls"] += 1
            job["status"] = "IN_PROGRESS" if job["polls"] <= self.running_polls else "COMPLETED"
        base = f"{self.url}/queue/{request.match_info['owner']}/{request.match_info['app']}"
        return web.json_response(
            {
                "status": job["status"],
                "queue_position": 0,
                "logs": None,
                "response_url": f"{base}/requests/{request.match_info['rid']}",
            }
        )

    async def _response(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.refuse(seen, problems, {"detail": "auth"}, "response")
        job = self.jobs.get(request.match_info["rid"])
        if job is None or job["status"] != "COMPLETED":
            return web.json_response({"detail": "Request is still in progress"}, status=400)
        scripted = self.scripted("result", any_key=False)
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        return web.json_response(self._result(job["model"], job["body"], request.match_info["rid"]))

    async def _cancel(self, request: web.Request) -> web.Response:
        seen = await self.record(request)
        if problems := self._auth(seen.headers):
            return self.refuse(seen, problems, {"detail": "auth"}, "cancel")
        rid = request.match_info["rid"]
        self.cancels.append(rid)
        job = self.jobs.get(rid)
        if job is not None and job["status"] in PENDING:
            job["status"] = "CANCELLATION_REQUESTED"
            return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)
        return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
