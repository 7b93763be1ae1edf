"""fal adapter: the queue API (default) or synchronous ``fal.run`` calls, JSON in and out.

Wire format: https://docs.fal.ai/model-apis/model-endpoints/queue (``POST
https://queue.fal.run/{model}`` → ``{request_id, status_url, response_url, cancel_url}``;
``GET status_url`` until ``COMPLETED``; ``GET response_url``; ``PUT cancel_url``) and
https://docs.fal.ai/model-apis/model-endpoints/synchronous-requests (``POST
https://fal.run/{model}``). ``Authorization: Key <key>``. Model inputs follow each model's
schema, e.g. https://fal.ai/models/fal-ai/flux/dev/api (``prompt``, ``image_size``,
``num_images``, ``seed``, ``output_format``; answer ``images[].url``, ``has_nsfw_concepts``).

Translation: ``size`` → ``image_size`` (a named preset when it is one, else
``{width, height}``) or ``aspect_ratio`` for models that take ratios; ``n`` → ``num_images``
batches where the model takes it, else parallel calls; edit images and masks are sent inline
as ``data:`` URIs (``image_url``, ``mask_url``; masks converted to white-is-edit). Images
flagged in ``has_nsfw_concepts`` are dropped; all flagged is a 400 content_policy_violation.
Config: ``mode`` (``queue``|``sync``), ``queue_url``, ``poll_interval_s``. The queue's
``status_url``/``response_url``/``cancel_url`` are only called (with the key) on the
configured hosts (``base_url``/``queue_url``); any other host fails the attempt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest, ImageResult, Operation
from . import inputs
from .base import Capabilities
from .failures import content_policy, job_failed, looks_like_policy, no_image
from .fanout import fan_out
from .http import HTTPProvider
from .polling import Jobs, interval_option
from .sizes import aspect_ratio, parse_wh

SYNC_URL = "https://fal.run"
QUEUE_URL = "https://queue.fal.run"
PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
PNG_JPEG = frozenset({"png", "jpeg"})
GEN: frozenset[Operation] = frozenset({"generations"})
EDIT: frozenset[Operation] = frozenset({"edits"})
PRESETS = {
    (1024, 1024): "square_hd", (512, 512): "square", (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9", (1024, 768): "landscape_4_3", (1024, 576): "landscape_16_9",
}  # fmt: skip
FLUX_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
IMAGEN_RATIOS = ("1:1", "16:9", "9:16", "3:4", "4:3")

SizeStyle = Literal["image_size", "aspect_ratio", "none"]


@dataclass(frozen=True, slots=True)
class Model:
    """How one fal model takes its inputs."""

    caps: Capabilities
    size: SizeStyle = "image_size"
    ratios: tuple[str, ...] = FLUX_RATIOS
    batch: int = 1  # images per call via ``num_images``; 1 → one call per image
    mask_field: str | None = None


def _caps(
    ops: frozenset[Operation], formats: frozenset[str] = PNG_JPEG, mask: bool = False
) -> Capabilities:
    return Capabilities(operations=ops, output_formats=formats, mask=mask)


MODELS: dict[str, Model] = {
    "fal-ai/flux/schnell": Model(_caps(GEN), batch=4),
    "fal-ai/flux/dev": Model(_caps(GEN), batch=4),
    "fal-ai/flux-pro/v1.1": Model(_caps(GEN), batch=4),
    "fal-ai/flux-pro/v1.1-ultra": Model(_caps(GEN), size="aspect_ratio"),
    "fal-ai/flux-pro/kontext/text-to-image": Model(_caps(GEN), size="aspect_ratio"),
    "fal-ai/flux-pro/kontext": Model(_caps(EDIT), size="none"),
    "fal-ai/flux-pro/kontext/max": Model(_caps(EDIT), size="none"),
    "fal-ai/flux/dev/image-to-image": Model(_caps(EDIT), size="none", batch=4),
    "fal-ai/flux-lora/inpainting": Model(
        _caps(EDIT, mask=True), size="none", batch=4, mask_field="mask_url"
    ),
    "fal-ai/imagen4/preview": Model(
        _caps(GEN, frozenset({"png"})), size="aspect_ratio", ratios=IMAGEN_RATIOS
    ),
}
# Unknown fal models: the common fal image schema, one image per call.
UNKNOWN = Model(_caps(GEN | EDIT, mask=True), mask_field="mask_url")


def image_size(size: str | None) -> str | dict[str, int] | None:
    """fal's ``image_size``: a preset name when the size is one, else ``{width, height}``."""
    wh = parse_wh(size)
    if wh is None:
        return None
    return PRESETS.get(wh) or {"width": wh[0], "height": wh[1]}


class FalProvider(HTTPProvider):
    """``fal/<owner>/<app>[/<path>]``, e.g. ``fal/fal-ai/flux/dev``."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.sync_url = (config.base_url or SYNC_URL).rstrip("/")
        self.queue_url = str(config.option("queue_url") or config.base_url or QUEUE_URL).rstrip("/")
        self.mode = str(config.option("mode", "queue"))
        self.jobs = Jobs(interval_option(config.option("poll_interval_s"), 0.5))

    def origin_urls(self) -> tuple[str, ...]:
        return (self.sync_url, self.queue_url)

    def capabilities(self, model: str) -> Capabilities:
        return MODELS.get(model, UNKNOWN).caps

    async def close(self) -> None:
        await self.jobs.close()
        await super().close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Key {self.config.api_key}"
        return headers

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        spec = MODELS.get(model, UNKNOWN)
        body = await self._input(spec, request)
        n = request.n_images
        calls = math.ceil(n / spec.batch)

        async def one(i: int) -> list[GeneratedImage]:
            payload = dict(body)
            if spec.batch > 1:
                payload["num_images"] = min(spec.batch, n - i * spec.batch)
            return await self._run(model, payload)

        images = await fan_out(calls, one)
        return ImageResult(
            images=images, created=int(time.time()), output_format=request.output_format
        )

    async def _input(self, spec: Model, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if request.prompt:
            body["prompt"] = request.prompt
        if request.operation == "generations" or spec.size != "none":
            if spec.size == "image_size" and (preset := image_size(request.size)) is not None:
                body["image_size"] = preset
            elif spec.size == "aspect_ratio" and parse_wh(request.size) is not None:
                body["aspect_ratio"] = aspect_ratio(request.size, spec.ratios)
        if request.operation == "edits":
            body["image_url"] = await inputs.data_uri(request.images[0])
            if request.mask is not None and spec.mask_field:
                mask = await inputs.provider_mask(request.mask, "white")
                body[spec.mask_field] = inputs.png_data_uri(mask)
        if request.output_format:
            body["output_format"] = request.output_format
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    async def _run(self, model: str, payload: dict[str, Any]) -> list[GeneratedImage]:
        try:
            if self.mode == "sync":
                doc = await self.send_json(
                    "POST", f"{self.sync_url}/{model}", headers=self._headers(), json=payload
                )
            else:
                doc = await self._queued(model, payload)
        except UpstreamHTTPError as exc:
            if exc.status in (400, 422) and looks_like_policy(exc.message):
                raise content_policy(self.name, exc.message) from None
            raise
        return self._images(doc)

    async def _queued(self, model: str, payload: dict[str, Any]) -> Any:
        headers = self._headers()
        ticket = await self.send_json(
            "POST", f"{self.queue_url}/{model}", headers=headers, json=payload
        )
        if not isinstance(ticket, dict) or not ticket.get("request_id"):
            raise no_image(self.name, "queue answer has no request_id")
        base = f"{self.queue_url}/{'/'.join(model.split('/')[:2])}/requests/{ticket['request_id']}"
        status_url = self.own_url(str(ticket.get("status_url") or f"{base}/status"), "status_url")
        response_url = self.own_url(str(ticket.get("response_url") or base), "response_url")
        cancel_url = self.own_url(str(ticket.get("cancel_url") or f"{base}/cancel"), "cancel_url")

        async def status() -> Any:
            return await self.send_json("GET", status_url, headers=headers)

        async def cancel() -> Any:
            return await self.send("PUT", cancel_url, headers=headers)

        state = await self.jobs.wait(
            status, lambda s: not isinstance(s, dict) or s.get("status") not in PENDING,
            cancel=cancel,
        )  # fmt: skip
        if not isinstance(state, dict) or state.get("status") != "COMPLETED":
            raise job_failed(self.name, f"queue request ended as {state!r:.200}")
        if state.get("error"):
            message = str(state["error"])
            if looks_like_policy(f"{state.get('error_type', '')} {message}"):
                raise content_policy(self.name, message)
            raise job_failed(self.name, message)
        return await self.send_json("GET", response_url, headers=headers)

    def _images(self, doc: Any) -> list[GeneratedImage]:
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            raise no_image(self.name)
        flags = doc.get("has_nsfw_concepts")
        flagged = flags if isinstance(flags, list) else []
        images: list[GeneratedImage] = []
        for i, item in enumerate(doc["images"]):
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            if i < len(flagged) and flagged[i] is True:
                continue
            images.append(GeneratedImage(url=item["url"], mime=item.get("content_type")))
        if not images:
            if flagged and all(f is True for f in flagged):
                raise content_policy(self.name, "every image was flagged as NSFW")
            raise no_image(self.name)
        return images
