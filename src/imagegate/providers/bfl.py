"""Black Forest Labs (FLUX) adapter: submit a task, poll its ``polling_url``, fetch the sample.

Wire format: https://docs.bfl.ai/quick_start/generating_images and the API reference at
https://docs.bfl.ai/api-reference (``POST https://api.bfl.ai/v1/{model}`` with header
``x-key``, answered ``{id, polling_url}``; ``GET polling_url`` until ``status`` is ``Ready``
→ ``result.sample`` is a signed image URL valid for 10 minutes). Other final statuses
(https://docs.bfl.ai/api_integration/errors): ``Request Moderated`` / ``Content Moderated``
→ 400 ``content_policy_violation``; ``Error``, ``Failed``, ``Task not found`` → 502.
BFL has no cancel call, so an abandoned task is simply no longer polled. ``polling_url`` is
only followed (with the ``x-key``) on the configured host or, with the default base URL, on an
https ``*.bfl.ai`` host (BFL answers regional ones such as ``api.eu1.bfl.ai``); any other
fails the attempt.

Translation: ``size`` → ``width``/``height`` rounded to the model's step and range (FLUX 1.x
pro/dev: multiples of 32 in 256–1440; FLUX.2: multiples of 16, sides 64–2048, at most 4 MP
where BFL counts 2048x2048 as 4 MP: https://help.bfl.ai/articles/4029171097-flux-2-technical-specifications
and the ``width``/``height`` ranges of https://docs.bfl.ai/api-reference) or the nearest
``aspect_ratio`` (Ultra, Kontext); one task makes one image, so ``n`` is fanned out with
``seed`` + i on the i-th task (parallel tasks must not repeat an image); edit
images go as base64 (``input_image``, ``input_image_2``...; Fill: ``image`` + ``mask`` with the
mask converted to white-is-edit). Config: ``poll_interval_s``, ``safety_tolerance``.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from ..config import ProviderConfig
from ..request import GeneratedImage, ImageRequest, ImageResult, Operation
from . import inputs
from .base import Capabilities
from .failures import content_policy, invalid_input, job_failed, no_image
from .fanout import fan_out
from .http import HTTPProvider
from .polling import Jobs, interval_option
from .sizes import aspect_ratio, parse_wh

BASE_URL = "https://api.bfl.ai"
PENDING = frozenset({"Pending", "Queued", "Processing"})
MODERATED = frozenset({"Request Moderated", "Content Moderated"})
RATIOS = ("21:9", "16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16", "9:21")
PNG_JPEG = frozenset({"png", "jpeg"})
GEN: frozenset[Operation] = frozenset({"generations"})
EDIT: frozenset[Operation] = frozenset({"edits"})


@dataclass(frozen=True, slots=True)
class Model:
    """How one FLUX endpoint takes size and input images."""

    caps: Capabilities
    size: Literal["wh", "ratio", "none"] = "wh"
    step: int = 32
    side: tuple[int, int] = (256, 1440)
    max_pixels: int | None = None  # width x height cap when the sides alone do not bound it
    fill: bool = False  # FLUX.1 Fill: ``image`` + ``mask`` instead of ``input_image``


def _caps(ops: frozenset[Operation], max_images: int = 1, mask: bool = False) -> Capabilities:
    return Capabilities(operations=ops, output_formats=PNG_JPEG, max_images=max_images, mask=mask)


FLUX2_MAX_PIXELS = 2048 * 2048  # "4 MP (e.g. 2048x2048)": BFL's megapixel is 1024x1024
FLUX2 = Model(
    _caps(GEN | EDIT, max_images=8), step=16, side=(64, 2048), max_pixels=FLUX2_MAX_PIXELS
)
KONTEXT = Model(_caps(GEN | EDIT, max_images=4), size="ratio")
MODELS: dict[str, Model] = {
    "flux-pro-1.1": Model(_caps(GEN)),
    "flux-pro": Model(_caps(GEN)),
    "flux-dev": Model(_caps(GEN)),
    "flux-pro-1.1-ultra": Model(_caps(GEN), size="ratio"),
    "flux-kontext-pro": KONTEXT,
    "flux-kontext-max": KONTEXT,
    "flux-pro-1.0-fill": Model(_caps(EDIT, mask=True), size="none", fill=True),
    "flux-2-pro": FLUX2,
    "flux-2-max": FLUX2,
    "flux-2-flex": FLUX2,
}


def fit_size(
    wh: tuple[int, int], step: int, side: tuple[int, int], max_pixels: int | None = None
) -> tuple[int, int]:
    """``wh`` scaled into ``side`` and under ``max_pixels`` (keeping its ratio as far as it
    can) and rounded to ``step``."""
    lo, hi = side
    w, h = wh
    scale = min(1.0, hi / max(w, h))
    if max_pixels is not None:
        scale = min(scale, math.sqrt(max_pixels / (w * h)))
    scale = max(scale, lo / min(w, h)) if min(w, h) * scale < lo else scale

    def snap(v: float) -> int:
        return min(hi, max(lo, round(v / step) * step))

    fw, fh = snap(w * scale), snap(h * scale)
    while max_pixels is not None and fw * fh > max_pixels and max(fw, fh) - step >= lo:
        if fw >= fh:  # rounding up went over the cap: take a step off the longer side
            fw -= step
        else:
            fh -= step
    return fw, fh


class BFLProvider(HTTPProvider):
    """``bfl/<endpoint>``, e.g. ``bfl/flux-pro-1.1`` or ``bfl/flux-kontext-pro``."""

    api_host_family = "bfl.ai"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or BASE_URL).rstrip("/")
        self.jobs = Jobs(interval_option(config.option("poll_interval_s"), 0.5))
        self.safety_tolerance = config.option("safety_tolerance")

    def capabilities(self, model: str) -> Capabilities:
        found = MODELS.get(model)
        if found is None:
            return Capabilities.unknown_model(self.name, model, MODELS)
        return found.caps

    async def close(self) -> None:
        await self.jobs.close()
        await super().close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["x-key"] = self.config.api_key
        return headers

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        spec = MODELS.get(model)
        if spec is None:
            raise invalid_input(self.capabilities(model).refused or "unknown model", "model")
        body = await self._input(spec, request)

        async def one(i: int) -> list[GeneratedImage]:
            seed = request.seed
            return [await self._task(model, body if seed is None else {**body, "seed": seed + i})]

        images = await fan_out(request.n_images, one)
        size = None
        if "width" in body:
            size = f"{body['width']}x{body['height']}"
        return ImageResult(
            images=images,
            created=int(time.time()),
            output_format=request.output_format,
            size=size,
        )

    async def _input(self, spec: Model, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if request.prompt:
            body["prompt"] = request.prompt
        wh = parse_wh(request.size)
        if wh is not None and spec.size == "wh":
            body["width"], body["height"] = fit_size(wh, spec.step, spec.side, spec.max_pixels)
        elif wh is not None and spec.size == "ratio":
            body["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
        if request.operation == "edits":
            if spec.fill:
                body["image"] = await inputs.b64(request.images[0])
                if request.mask is not None:
                    mask = await inputs.provider_mask(request.mask, "white")
                    body["mask"] = base64.b64encode(mask).decode("ascii")
            else:
                for i, image in enumerate(request.images):
                    body["input_image" if i == 0 else f"input_image_{i + 1}"] = await inputs.b64(
                        image
                    )
        if request.output_format:
            body["output_format"] = request.output_format
        if self.safety_tolerance is not None:
            body["safety_tolerance"] = int(self.safety_tolerance)
        return body

    async def _task(self, model: str, body: dict[str, Any]) -> GeneratedImage:
        headers = self._headers()
        url = f"{self.base_url}/v1/{model}"
        task = await self.send_json("POST", url, headers=headers, json=body)
        if not isinstance(task, dict) or not task.get("id"):
            raise no_image(self.name, "submit answer has no task id")
        given = task.get("polling_url")
        polling_url = (
            self.own_url(str(given), "polling_url") if given else f"{self.base_url}/v1/get_result"
        )
        params = None if task.get("polling_url") else {"id": str(task["id"])}

        async def fetch() -> Any:
            return await self.send_json("GET", polling_url, headers=headers, params=params)

        state = await self.jobs.wait(
            fetch, lambda s: not isinstance(s, dict) or s.get("status") not in PENDING
        )
        return self._sample(state)

    def _sample(self, state: Any) -> GeneratedImage:
        if not isinstance(state, dict):
            raise no_image(self.name, "poll answer is not an object")
        status = str(state.get("status"))
        if status in MODERATED:
            raise content_policy(self.name, f"task {status.lower()}")
        if status != "Ready":
            detail = state.get("details") or state.get("result") or ""
            raise job_failed(self.name, f"task ended as {status!r} {detail!s:.200}".strip())
        result = state.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(sample, str) or not sample:
            raise no_image(self.name, "ready task has no result.sample")
        return GeneratedImage(url=sample)
