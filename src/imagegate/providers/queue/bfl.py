"""Black Forest Labs (FLUX): submit a task, poll its ``polling_url``, fetch the sample.

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

import math
from dataclasses import dataclass
from typing import Any, Literal

from ...config import ProviderConfig
from ...request import GeneratedImage, ImageResult
from ..core.call import Answer, Call, Job, Wire
from ..core.failures import job_failed, no_image
from ..core.policy import content_policy
from ..core.sizes import aspect_ratio, parse_wh
from ..core.spec import Auth, Calls, Errors, Inputs, Keys, Models, ModelSpec, Polling, ProviderSpec
from .common import EDIT, GEN, caps, finished_unless, followed, result, whole_option

BASE_URL = "https://api.bfl.ai"
PENDING = frozenset({"Pending", "Queued", "Processing"})
MODERATED = frozenset({"Request Moderated", "Content Moderated"})
RATIOS = ("21:9", "16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16", "9:21")


@dataclass(frozen=True, slots=True)
class FluxModel(ModelSpec):
    """How one FLUX endpoint takes size and input images."""

    size: Literal["wh", "ratio", "none"] = "wh"
    step: int = 32
    side: tuple[int, int] = (256, 1440)
    max_pixels: int | None = None  # width x height cap when the sides alone do not bound it
    fill: bool = False  # FLUX.1 Fill: ``image`` + ``mask`` instead of ``input_image``


FLUX2_MAX_PIXELS = 2048 * 2048  # "4 MP (e.g. 2048x2048)": BFL's megapixel is 1024x1024
FLUX2 = FluxModel(
    caps(GEN | EDIT, max_images=8), step=16, side=(64, 2048), max_pixels=FLUX2_MAX_PIXELS
)
KONTEXT = FluxModel(caps(GEN | EDIT, max_images=4), size="ratio")
MODELS: dict[str, FluxModel] = {
    "flux-pro-1.1": FluxModel(caps(GEN)),
    "flux-pro": FluxModel(caps(GEN)),
    "flux-dev": FluxModel(caps(GEN)),
    "flux-pro-1.1-ultra": FluxModel(caps(GEN), size="ratio"),
    "flux-kontext-pro": KONTEXT,
    "flux-kontext-max": KONTEXT,
    "flux-pro-1.0-fill": FluxModel(caps(EDIT, mask=True), size="none", fill=True),
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


def size_fields(entry: FluxModel, size: str | None) -> dict[str, Any]:
    """``width``/``height`` fitted to ``entry``'s grid, or its nearest ``aspect_ratio``."""
    wh = parse_wh(size)
    if wh is None or entry.size == "none":
        return {}
    if entry.size == "ratio":
        return {"aspect_ratio": aspect_ratio(size, RATIOS)}
    width, height = fit_size(wh, entry.step, entry.side, entry.max_pixels)
    return {"width": width, "height": height}


def build(call: Call[FluxModel]) -> Wire:
    request, entry = call.request, call.entry
    body: dict[str, Any] = {}
    if request.prompt:
        body["prompt"] = request.prompt
    body.update(size_fields(entry, request.size))
    if entry.fill and call.images:
        body["image"] = call.images[0]
        if call.mask_text is not None:
            body["mask"] = call.mask_text
    else:
        for i, image in enumerate(call.images):
            body["input_image" if i == 0 else f"input_image_{i + 1}"] = image
    if request.output_format:
        body["output_format"] = request.output_format
    if call.settings["safety_tolerance"] is not None:
        body["safety_tolerance"] = call.settings["safety_tolerance"]
    if call.seed is not None:
        body["seed"] = call.seed
    return Wire(f"/v1/{call.model}", json=body)


def submitted(call: Call[Any], answer: Answer) -> Job:
    task = answer.doc()
    if not isinstance(task, dict) or not task.get("id"):
        raise no_image(call.provider, "submit answer has no task id")
    if task.get("polling_url"):
        return Job(poll=followed(call, task["polling_url"], "", "polling_url"))
    return Job(poll=Wire("/v1/get_result", "GET", params={"id": str(task["id"])}))


def parse(call: Call[FluxModel], answer: Answer) -> ImageResult:
    state = answer.doc()
    if not isinstance(state, dict):
        raise no_image(call.provider, "poll answer is not an object")
    status = str(state.get("status"))
    if status in MODERATED:
        raise content_policy(call.provider, f"task {status.lower()}")
    if status != "Ready":
        detail = state.get("details") or state.get("result") or ""
        raise job_failed(call.provider, f"task ended as {status!r} {detail!s:.200}".strip())
    found = state.get("result")
    sample = found.get("sample") if isinstance(found, dict) else None
    if not isinstance(sample, str) or not sample:
        raise no_image(call.provider, "ready task has no result.sample")
    fields = size_fields(call.entry, call.request.size)
    size = f"{fields['width']}x{fields['height']}" if "width" in fields else None
    return result(call, [GeneratedImage(url=sample)], size)


def setup(config: ProviderConfig) -> dict[str, Any]:
    return {"safety_tolerance": whole_option(config.option("safety_tolerance"))}


SPEC = ProviderSpec(
    type="bfl",
    calls=Calls(build, parse),
    base_url=BASE_URL,
    auth=Auth("header", name="x-key"),
    host_family="bfl.ai",
    # no OpenAI optional parameter is sent (``Models``' default), each is noted on the trace:
    # BFL's ``safety_tolerance`` is a 0-6 scale, set in config, not moderation=low
    models=Models(MODELS),
    inputs=Inputs(encode="b64", mask="white"),
    errors=Errors(policy_statuses=frozenset({400})),
    batch=1,
    polling=Polling(submitted, finished_unless(PENDING), interval_s=0.5),
    keys=Keys(optional=frozenset({"safety_tolerance"}), credentials=("api_key",)),
    setup=setup,
)
