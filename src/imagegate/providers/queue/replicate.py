"""Replicate: create a prediction, poll it until it ends, return its output URLs.

Wire format: https://replicate.com/docs/reference/http#predictions.create and
https://replicate.com/docs/topics/predictions/lifecycle. Official models: ``POST
/v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}``; a pinned version
(``owner/name:<version>``): ``POST /v1/predictions`` with ``{"version", "input"}``. Then ``GET
urls.get`` until ``status`` is ``succeeded``, ``failed`` or ``canceled``; ``POST urls.cancel``
when the attempt is abandoned. ``Authorization: Bearer <token>``; ``Prefer: wait=<s>`` when
config ``wait_s`` is set (the create call then often answers finished).

Translation: ``size`` → the model's nearest ``aspect_ratio``; ``n`` → ``num_outputs`` batches
where the model takes it (FLUX schnell/dev), else parallel predictions, the i-th with ``seed``
+ i so they do not repeat an image; ``output_format`` ``jpeg`` → ``jpg``; ``output_compression``
→ ``output_quality`` on the FLUX models whose schema has it (``QUALITY``; OpenAI's other optional
parameters have no equivalent and are left out, noted); edit images and
masks (white-is-edit) go inline as ``data:`` URIs below 1 MB, larger ones through the Files
API (https://replicate.com/docs/topics/predictions/input-files recommends data URIs only
under 1 MB): ``POST /v1/files`` multipart with the bytes in a ``content`` part, answered
``{id, ..., urls: {get}}``, and ``urls.get`` goes in the input (what replicate-python's
``files.create`` + ``encode_json`` do, https://github.com/replicate/replicate-python
``replicate/file.py``, ``replicate/helpers.py``). A file is uploaded once per request and
provider entry (``prepare``, remembered on the caller's upload): retries and fallbacks reuse
its URL. A failed prediction whose error reads like a safety refusal is a 400
``content_policy_violation``; any other failed or canceled prediction is a 502. ``urls.get``
and ``urls.cancel`` are only called (with the token) on the configured host; any other host
fails the attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ...config import ProviderConfig
from ...request import GeneratedImage, ImageResult, UploadedFile
from ..core import inputs
from ..core.call import Answer, Call, Job, Send, Wire
from ..core.failures import invalid_input, job_failed, no_image
from ..core.params import Params, Sent, value
from ..core.policy import content_policy, is_policy
from ..core.polling import interval_option
from ..core.sizes import aspect_ratio, parse_wh
from ..core.spec import Calls, Errors, Inputs, Keys, Models, ModelSpec, Polling, ProviderSpec
from .common import EDIT, GEN, caps, finished_unless, followed, result

BASE_URL = "https://api.replicate.com/v1"
DATA_URI_MAX_BYTES = 1_000_000  # inputs this large or larger go through the Files API
MAX_UPLOAD_BYTES = 100_000_000  # Replicate takes files "up to 100MB"
MAX_FILE_URL_CHARS = 2048
RUNNING = frozenset({"starting", "processing"})
ALL_FORMATS = frozenset({"png", "jpeg", "webp"})
FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
SD_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "9:16", "9:21")
IMAGEN_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3")
# "output_quality: Quality when saving the output images, from 0 to 100 [...] Not relevant for
# .png outputs": OpenAI's ``output_compression`` in other words, in the input schema of
# https://replicate.com/black-forest-labs/flux-schnell/api (and flux-dev, flux-1.1-pro)
QUALITY: Params = {"output_compression": Sent(wire="output_quality")}
IDEOGRAM_RATIOS = tuple("1:3 3:1 1:2 2:1 9:16 16:9 10:16 16:10 2:3 3:2 3:4 4:3 4:5 5:4 1:1".split())


@dataclass(frozen=True, slots=True)
class ReplicateModel(ModelSpec):
    """How one Replicate model takes its inputs (``batch``: images per prediction via
    ``num_outputs``; unset, one prediction per image)."""

    ratios: tuple[str, ...] = FLUX_RATIOS
    image_field: str = "image"
    mask_field: str | None = None
    edit_inputs: Mapping[str, Any] = field(default_factory=dict)


KONTEXT = ReplicateModel(
    caps(GEN | EDIT),
    image_field="input_image",
    edit_inputs={"aspect_ratio": "match_input_image"},
)
MODELS: dict[str, ReplicateModel] = {
    "black-forest-labs/flux-schnell": ReplicateModel(
        caps(GEN, ALL_FORMATS), batch=4, params=QUALITY
    ),
    "black-forest-labs/flux-dev": ReplicateModel(caps(GEN, ALL_FORMATS), batch=4, params=QUALITY),
    "black-forest-labs/flux-pro": ReplicateModel(caps(GEN, ALL_FORMATS)),
    "black-forest-labs/flux-1.1-pro": ReplicateModel(caps(GEN, ALL_FORMATS), params=QUALITY),
    "black-forest-labs/flux-1.1-pro-ultra": ReplicateModel(caps(GEN)),
    "black-forest-labs/flux-kontext-pro": KONTEXT,
    "black-forest-labs/flux-kontext-max": KONTEXT,
    "black-forest-labs/flux-fill-pro": ReplicateModel(caps(EDIT, mask=True), mask_field="mask"),
    "stability-ai/stable-diffusion-3.5-large": ReplicateModel(
        caps(GEN | EDIT, ALL_FORMATS), ratios=SD_RATIOS, edit_inputs={"prompt_strength": 0.85}
    ),
    "google/imagen-4": ReplicateModel(caps(GEN), ratios=IMAGEN_RATIOS),
    "ideogram-ai/ideogram-v3-turbo": ReplicateModel(
        caps(GEN, frozenset({"png"})), ratios=IDEOGRAM_RATIOS
    ),
}
UNKNOWN = ReplicateModel(caps(GEN | EDIT, ALL_FORMATS, mask=True), mask_field="mask")


def split_version(model: str) -> tuple[str, str | None]:
    """``owner/name:version`` → (``owner/name``, version); no version → None."""
    name, sep, version = model.partition(":")
    return name, (version if sep and version else None)


def match(model: str) -> ReplicateModel | None:
    """A pinned version of a listed model is that model."""
    return MODELS.get(split_version(model)[0])


def output_format(fmt: str | None) -> str | None:
    """Replicate's spelling of an output format (``jpeg`` → ``jpg``)."""
    return "jpg" if fmt == "jpeg" else fmt


def build(call: Call[ReplicateModel]) -> Wire:
    request, entry = call.request, call.entry
    body: dict[str, Any] = {}
    if request.prompt:
        body["prompt"] = request.prompt
    if request.operation == "edits":
        body.update(entry.edit_inputs)
    if parse_wh(request.size) is not None:
        body["aspect_ratio"] = aspect_ratio(request.size, entry.ratios)
    if call.images:
        body[entry.image_field] = call.images[0]
    if call.mask_text is not None and entry.mask_field:
        body[entry.mask_field] = call.mask_text
    if request.output_format:
        body["output_format"] = output_format(request.output_format)
    quality = value(SPEC.models.rules(entry), "output_compression", request)
    if quality is not None:
        body["output_quality"] = quality
    if call.seed is not None:
        body["seed"] = call.seed
    if (entry.batch or 1) > 1:
        body["num_outputs"] = call.count
    wait = call.settings["wait_s"]
    headers = {"Prefer": f"wait={wait}"} if wait else None
    name, version = split_version(call.model)
    if version:
        return Wire("/predictions", json={"version": version, "input": body}, headers=headers)
    return Wire(f"/models/{name}/predictions", json={"input": body}, headers=headers)


async def prepare(call: Call[ReplicateModel], send: Send) -> None:
    """The edit image and mask as Replicate takes them: a ``data:`` URI under 1 MB, else the
    URL of a file uploaded once for the request."""
    request = call.request
    if request.operation != "edits":
        return
    image = request.images[0]
    if image.size < DATA_URI_MAX_BYTES:
        call.images = [await inputs.data_uri(image)]
    else:
        read = partial(inputs.read, image)  # read only when not uploaded yet
        call.images = [await _file(call, send, image, f"image.{image.kind}", image.kind, read)]
    mask = call.mask  # converted to white-is-edit by the runner (spec.inputs.mask)
    if mask is None or request.mask is None or not call.entry.mask_field:
        return
    if mask.size < DATA_URI_MAX_BYTES:
        call.mask_text = await inputs.data_uri(mask)
    else:
        read = partial(inputs.read, mask)
        call.mask_text = await _file(call, send, request.mask, "mask.png", "png", read)


async def _file(
    call: Call[Any],
    send: Send,
    owner: UploadedFile,
    filename: str,
    kind: str,
    read: Callable[[], Awaitable[bytes]],
) -> str:
    """The ``urls.get`` of ``read()`` uploaded through the Files API, once per request.

    The URL is kept on ``owner`` (the caller's upload) for this provider entry, so a retry or
    a fallback to another model of it sends the same file again by reference.
    """
    key = ("replicate_file", call.provider, filename)
    url: str = inputs.remembered(owner, key)
    if not inputs.is_missing(url):
        return url
    data = await read()
    if len(data) > MAX_UPLOAD_BYTES:
        raise invalid_input(
            f"{owner.field} is over Replicate's {MAX_UPLOAD_BYTES} byte file limit", owner.field
        )
    upload = UploadedFile(owner.field, filename, kind, len(data), data=data)
    doc = (await send(Wire("/files", fields=[], files=[("content", upload)]))).doc()
    urls = doc.get("urls") if isinstance(doc, dict) else None
    found = urls.get("get") if isinstance(urls, dict) else None
    if (
        not isinstance(found, str)
        or not found.startswith(("https://", "http://"))
        or len(found) > MAX_FILE_URL_CHARS
    ):
        raise no_image(call.provider, "file upload answer has no usable urls.get")
    inputs.remember(owner, key, found)
    return found


def submitted(call: Call[Any], answer: Answer) -> Job | None:
    """Follow a prediction still running (with ``Prefer: wait`` it may have ended)."""
    prediction = answer.doc()
    if not isinstance(prediction, dict) or not prediction.get("id"):
        raise no_image(call.provider, "create answer has no prediction id")
    if prediction.get("status") not in RUNNING:
        return None
    given = prediction.get("urls")
    urls: dict[str, Any] = given if isinstance(given, dict) else {}
    own = f"/predictions/{prediction['id']}"
    return Job(
        poll=followed(call, urls.get("get"), own, "urls.get"),
        cancel=followed(call, urls.get("cancel"), f"{own}/cancel", "urls.cancel", "POST"),
    )


def parse(call: Call[ReplicateModel], answer: Answer) -> ImageResult:
    prediction = answer.doc()
    if not isinstance(prediction, dict):
        raise no_image(call.provider, "prediction is not an object")
    status = prediction.get("status")
    if status != "succeeded":
        error = str(prediction.get("error") or f"prediction {status}")
        if status == "failed" and is_policy(error):
            raise content_policy(call.provider, error)
        raise job_failed(call.provider, error)
    output = prediction.get("output")
    items = output if isinstance(output, list) else [output]
    urls = [o for o in items if isinstance(o, str) and o.startswith(("http", "data:"))]
    if not urls:
        raise no_image(call.provider, "prediction output holds no image URL")
    return result(call, [GeneratedImage(url=u) for u in urls])


def setup(config: ProviderConfig) -> dict[str, Any]:
    wait = interval_option(config.option("wait_s"), 0.0)
    return {"wait_s": min(60, max(1, int(wait))) if wait else None}  # Replicate allows 1-60


SPEC = ProviderSpec(
    type="replicate",
    calls=Calls(build, parse),
    base_url=BASE_URL,
    models=Models(MODELS, match=match, fallback=UNKNOWN),
    inputs=Inputs(mask="white", prepare=prepare),  # inputs over 1 MB: uploaded first
    errors=Errors(policy_statuses=frozenset({400})),
    batch=1,
    polling=Polling(submitted, finished_unless(RUNNING), interval_s=1.0),
    keys=Keys(optional=frozenset({"wait_s"}), credentials=("api_key",)),
    setup=setup,
)
