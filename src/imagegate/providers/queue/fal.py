"""fal: the queue API (default) or synchronous ``fal.run`` calls, JSON in and out.

Wire format: https://docs.fal.ai/model-apis/model-endpoints/queue (``POST
https://queue.fal.run/{model}`` → ``{request_id, status_url, response_url, cancel_url}``;
``GET status_url`` until ``COMPLETED``; ``GET response_url``; ``PUT cancel_url``) and
https://docs.fal.ai/model-apis/model-endpoints/synchronous-requests (``POST
https://fal.run/{model}``). ``Authorization: Key <key>``. Model inputs follow each model's
schema, e.g. https://fal.ai/models/fal-ai/flux/dev/api (``prompt``, ``image_size``,
``num_images``, ``seed``, ``output_format``; answer ``images[].url``, ``has_nsfw_concepts``).

Translation: ``size`` → ``image_size`` (a named preset when it is one, else
``{width, height}``) or ``aspect_ratio`` for models that take ratios; ``n`` → ``num_images``
batches where the model takes it (``ModelSpec.batch``), else parallel calls, the i-th with
``seed`` + i; edit images and masks are sent inline as ``data:`` URIs (``image_url``,
``mask_url``; masks converted to white-is-edit). Images flagged in ``has_nsfw_concepts`` are
dropped; all flagged is a 400 content_policy_violation, and so is a policy-worded 400/422.
Config: ``mode`` (``queue``|``sync``), ``queue_url``, ``poll_interval_s``. The queue's
``status_url``/``response_url``/``cancel_url`` are only called (with the key) on the
configured hosts (``base_url``/``queue_url``); any other host fails the attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...config import ProviderConfig
from ...request import GeneratedImage, ImageResult
from ..core.call import Answer, Call, Job, Wire
from ..core.failures import job_failed, no_image
from ..core.policy import content_policy, is_policy
from ..core.sizes import aspect_ratio, parse_wh
from ..core.spec import Auth, Calls, Inputs, Keys, Models, ModelSpec, Polling, ProviderSpec
from .common import EDIT, GEN, caps, finished_unless, followed, result

SYNC_URL = "https://fal.run"
QUEUE_URL = "https://queue.fal.run"
PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
PRESETS = {
    (1024, 1024): "square_hd",
    (512, 512): "square",
    (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9",
    (1024, 768): "landscape_4_3",
    (1024, 576): "landscape_16_9",
}
FLUX_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
IMAGEN_RATIOS = ("1:1", "16:9", "9:16", "3:4", "4:3")

SizeStyle = Literal["image_size", "aspect_ratio", "none"]


@dataclass(frozen=True, slots=True)
class FalModel(ModelSpec):
    """How one fal model takes its size and mask (``batch``: images per call via
    ``num_images``; unset, one call per image)."""

    size: SizeStyle = "image_size"
    ratios: tuple[str, ...] = FLUX_RATIOS
    mask_field: str | None = None


MODELS: dict[str, FalModel] = {
    "fal-ai/flux/schnell": FalModel(caps(GEN), batch=4),
    "fal-ai/flux/dev": FalModel(caps(GEN), batch=4),
    "fal-ai/flux-pro/v1.1": FalModel(caps(GEN), batch=4),
    "fal-ai/flux-pro/v1.1-ultra": FalModel(caps(GEN), size="aspect_ratio"),
    "fal-ai/flux-pro/kontext/text-to-image": FalModel(caps(GEN), size="aspect_ratio"),
    "fal-ai/flux-pro/kontext": FalModel(caps(EDIT), size="none"),
    "fal-ai/flux-pro/kontext/max": FalModel(caps(EDIT), size="none"),
    "fal-ai/flux/dev/image-to-image": FalModel(caps(EDIT), size="none", batch=4),
    "fal-ai/flux-lora/inpainting": FalModel(
        caps(EDIT, mask=True), size="none", batch=4, mask_field="mask_url"
    ),
    "fal-ai/imagen4/preview": FalModel(
        caps(GEN, frozenset({"png"})), size="aspect_ratio", ratios=IMAGEN_RATIOS
    ),
}
# Unknown fal models: the common fal image schema, one image per call.
UNKNOWN = FalModel(caps(GEN | EDIT, mask=True), mask_field="mask_url")


def image_size(size: str | None) -> str | dict[str, int] | None:
    """fal's ``image_size``: a preset name when the size is one, else ``{width, height}``."""
    wh = parse_wh(size)
    if wh is None:
        return None
    return PRESETS.get(wh) or {"width": wh[0], "height": wh[1]}


def size_fields(entry: FalModel, size: str | None) -> dict[str, Any]:
    """The size inputs ``entry`` takes for ``size`` (none for ``auto`` or no size)."""
    if entry.size == "image_size" and (preset := image_size(size)) is not None:
        return {"image_size": preset}
    if entry.size == "aspect_ratio" and parse_wh(size) is not None:
        return {"aspect_ratio": aspect_ratio(size, entry.ratios)}
    return {}


def build(call: Call[FalModel]) -> Wire:
    request, entry = call.request, call.entry
    body: dict[str, Any] = {}
    if request.prompt:
        body["prompt"] = request.prompt
    if request.operation == "generations" or entry.size != "none":
        body.update(size_fields(entry, request.size))
    if call.images:
        body["image_url"] = call.images[0]
    if call.mask_text is not None and entry.mask_field:
        body[entry.mask_field] = call.mask_text
    if request.output_format:
        body["output_format"] = request.output_format
    if call.seed is not None:
        body["seed"] = call.seed
    if (entry.batch or 1) > 1:
        body["num_images"] = call.count
    if call.settings["mode"] == "sync":
        return Wire(f"/{call.model}", json=body)
    return Wire(f"{call.settings['queue_url']}/{call.model}", json=body)


def submitted(call: Call[Any], answer: Answer) -> Job | None:
    """The queue ticket's URLs (fal's own defaults use the app id, ``owner/app``)."""
    if call.settings["mode"] == "sync":
        return None
    ticket = answer.doc()
    if not isinstance(ticket, dict) or not ticket.get("request_id"):
        raise no_image(call.provider, "queue answer has no request_id")
    app = "/".join(call.model.split("/")[:2])
    base = f"{call.settings['queue_url']}/{app}/requests/{ticket['request_id']}"
    return Job(
        poll=followed(call, ticket.get("status_url"), f"{base}/status", "status_url"),
        cancel=followed(call, ticket.get("cancel_url"), f"{base}/cancel", "cancel_url", "PUT"),
        result=followed(call, ticket.get("response_url"), base, "response_url"),
    )


def check(call: Call[Any], answer: Answer) -> None:
    state = answer.doc()
    if not isinstance(state, dict) or state.get("status") != "COMPLETED":
        raise job_failed(call.provider, f"queue request ended as {state!r:.200}")
    if state.get("error"):
        message = str(state["error"])
        if is_policy(f"{state.get('error_type', '')} {message}"):
            raise content_policy(call.provider, message)
        raise job_failed(call.provider, message)


def parse(call: Call[FalModel], answer: Answer) -> ImageResult:
    """``images[].url``, without the ones ``has_nsfw_concepts`` flags."""
    doc = answer.doc()
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise no_image(call.provider)
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
            raise content_policy(call.provider, "every image was flagged as NSFW")
        raise no_image(call.provider)
    return result(call, images)


def setup(config: ProviderConfig) -> dict[str, Any]:
    queue_url = config.option("queue_url") or config.base_url or QUEUE_URL
    mode = "sync" if str(config.option("mode", "queue")) == "sync" else "queue"
    return {"mode": mode, "queue_url": str(queue_url).rstrip("/")}


def origins(settings: Mapping[str, Any]) -> tuple[str, ...]:
    return (settings["queue_url"],)


SPEC = ProviderSpec(
    type="fal",
    calls=Calls(build, parse),
    base_url=SYNC_URL,
    auth=Auth(scheme="Key"),
    origins=origins,
    # no OpenAI optional parameter is sent (``Models``' default), each is noted on the trace:
    # the FLUX schemas have no quality, style or background field
    models=Models(MODELS, fallback=UNKNOWN),
    inputs=Inputs(encode="data_uri", mask="white"),
    batch=1,
    polling=Polling(submitted, finished_unless(PENDING), check, interval_s=0.5),
    keys=Keys(optional=frozenset({"queue_url", "mode"}), credentials=("api_key",)),
    setup=setup,
)
