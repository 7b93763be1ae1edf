"""Replicate adapter: create a prediction, poll it until it ends, return its output URLs.

Wire format: https://replicate.com/docs/reference/http#predictions.create and
https://replicate.com/docs/topics/predictions/lifecycle. Official models: ``POST
/v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}``; a pinned version
(``owner/name:<version>``): ``POST /v1/predictions`` with ``{"version", "input"}``. Then ``GET
urls.get`` until ``status`` is ``succeeded``, ``failed`` or ``canceled``; ``POST urls.cancel``
when the attempt is abandoned. ``Authorization: Bearer <token>``; ``Prefer: wait=<s>`` when
config ``wait_s`` is set (the create call then often answers finished).

Translation: ``size`` → the model's nearest ``aspect_ratio``; ``n`` → ``num_outputs`` batches
where the model takes it (FLUX schnell/dev), else parallel predictions, the i-th with ``seed``
+ i so they do not repeat an image; ``output_format`` ``jpeg`` → ``jpg``; edit images and
masks (white-is-edit) go inline as ``data:`` URIs below 1 MB, larger ones through the Files
API (https://replicate.com/docs/topics/predictions/input-files recommends data URIs only
under 1 MB): ``POST /v1/files`` multipart with the bytes in a ``content`` part, answered
``{id, ..., urls: {get}}``, and ``urls.get`` goes in the input (what replicate-python's
``files.create`` + ``encode_json`` do, https://github.com/replicate/replicate-python
``replicate/file.py``, ``replicate/helpers.py``). A file is uploaded once per request and
provider entry: retries and fallbacks reuse its URL.
A failed prediction whose error reads like a safety refusal is a 400
``content_policy_violation``; any other failed or canceled prediction is a 502. ``urls.get``
and ``urls.cancel`` are only called (with the token) on the configured host; any other host
fails the attempt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import ProviderConfig
from ..request import GeneratedImage, ImageRequest, ImageResult, Operation, UploadedFile
from . import inputs
from .base import Capabilities
from .failures import content_policy, invalid_input, job_failed, looks_like_policy, no_image
from .fanout import fan_out
from .form import form_parts
from .http import HTTPProvider
from .polling import Jobs, interval_option
from .sizes import aspect_ratio, parse_wh

BASE_URL = "https://api.replicate.com/v1"
DATA_URI_MAX_BYTES = 1_000_000  # inputs this large or larger go through the Files API
MAX_UPLOAD_BYTES = 100_000_000  # Replicate takes files "up to 100MB"
MAX_FILE_URL_CHARS = 2048
RUNNING = frozenset({"starting", "processing"})
ALL_FORMATS = frozenset({"png", "jpeg", "webp"})
PNG_JPEG = frozenset({"png", "jpeg"})
GEN: frozenset[Operation] = frozenset({"generations"})
EDIT: frozenset[Operation] = frozenset({"edits"})
FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
SD_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "9:16", "9:21")
IMAGEN_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3")
IDEOGRAM_RATIOS = (
    "1:3", "3:1", "1:2", "2:1", "9:16", "16:9", "10:16", "16:10", "2:3", "3:2", "3:4", "4:3",
    "4:5", "5:4", "1:1",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Model:
    """How one Replicate model takes its inputs."""

    caps: Capabilities
    ratios: tuple[str, ...] = FLUX_RATIOS
    batch: int = 1  # images per prediction via ``num_outputs``
    image_field: str = "image"
    mask_field: str | None = None
    edit_inputs: dict[str, Any] = field(default_factory=dict)


def _caps(
    ops: frozenset[Operation], formats: frozenset[str] = ALL_FORMATS, mask: bool = False
) -> Capabilities:
    return Capabilities(operations=ops, output_formats=formats, mask=mask)


KONTEXT = Model(
    _caps(GEN | EDIT, PNG_JPEG),
    image_field="input_image",
    edit_inputs={"aspect_ratio": "match_input_image"},
)
MODELS: dict[str, Model] = {
    "black-forest-labs/flux-schnell": Model(_caps(GEN), batch=4),
    "black-forest-labs/flux-dev": Model(_caps(GEN), batch=4),
    "black-forest-labs/flux-pro": Model(_caps(GEN)),
    "black-forest-labs/flux-1.1-pro": Model(_caps(GEN)),
    "black-forest-labs/flux-1.1-pro-ultra": Model(_caps(GEN, PNG_JPEG)),
    "black-forest-labs/flux-kontext-pro": KONTEXT,
    "black-forest-labs/flux-kontext-max": KONTEXT,
    "black-forest-labs/flux-fill-pro": Model(_caps(EDIT, PNG_JPEG, mask=True), mask_field="mask"),
    "stability-ai/stable-diffusion-3.5-large": Model(
        _caps(GEN | EDIT), ratios=SD_RATIOS, edit_inputs={"prompt_strength": 0.85}
    ),
    "google/imagen-4": Model(_caps(GEN, PNG_JPEG), ratios=IMAGEN_RATIOS),
    "ideogram-ai/ideogram-v3-turbo": Model(_caps(GEN, frozenset({"png"})), ratios=IDEOGRAM_RATIOS),
}
UNKNOWN = Model(_caps(GEN | EDIT, mask=True), mask_field="mask")


def split_version(model: str) -> tuple[str, str | None]:
    """``owner/name:version`` → (``owner/name``, version); no version → None."""
    name, sep, version = model.partition(":")
    return name, (version if sep and version else None)


class ReplicateProvider(HTTPProvider):
    """``replicate/<owner>/<name>[:<version>]``."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or BASE_URL).rstrip("/")
        self.jobs = Jobs(interval_option(config.option("poll_interval_s"), 1.0))
        wait = interval_option(config.option("wait_s"), 0.0)
        self.wait_s = min(60, max(1, int(wait))) if wait else None  # Replicate allows 1-60

    def capabilities(self, model: str) -> Capabilities:
        return MODELS.get(split_version(model)[0], UNKNOWN).caps

    async def close(self) -> None:
        await self.jobs.close()
        await super().close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        spec = MODELS.get(split_version(model)[0], UNKNOWN)
        base_input = await self._input(spec, request)
        n = request.n_images

        async def one(i: int) -> list[GeneratedImage]:
            payload = dict(base_input)
            if request.seed is not None:
                payload["seed"] = request.seed + i  # parallel predictions: distinct images
            if spec.batch > 1:
                payload["num_outputs"] = min(spec.batch, n - i * spec.batch)
            return await self._predict(model, payload)

        images = await fan_out(math.ceil(n / spec.batch), one)
        return ImageResult(
            images=images, created=int(time.time()), output_format=request.output_format
        )

    async def _input(self, spec: Model, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if request.prompt:
            body["prompt"] = request.prompt
        if request.operation == "edits":
            body.update(spec.edit_inputs)
        if parse_wh(request.size) is not None:
            body["aspect_ratio"] = aspect_ratio(request.size, spec.ratios)
        if request.operation == "edits":
            image = request.images[0]
            if image.size < DATA_URI_MAX_BYTES:
                body[spec.image_field] = await inputs.data_uri(image)
            else:
                raw = await inputs.read(image)
                name, kind = f"image.{image.kind}", image.content_type
                body[spec.image_field] = await self._file(image, name, kind, raw)
            if request.mask is not None and spec.mask_field:
                mask = await inputs.provider_mask(request.mask, "white")
                body[spec.mask_field] = (
                    inputs.png_data_uri(mask)
                    if len(mask) < DATA_URI_MAX_BYTES
                    else await self._file(request.mask, "mask.png", "image/png", mask)
                )
        if request.output_format:
            fmt = request.output_format
            body["output_format"] = "jpg" if fmt == "jpeg" else fmt
        return body

    async def _file(self, owner: UploadedFile, filename: str, kind: str, data: bytes) -> str:
        """The ``urls.get`` of ``data`` uploaded through the Files API, once per request.

        The URL is kept on ``owner`` (the caller's upload) for this provider entry, so a
        retry or a fallback to another model of it sends the same file again by reference.
        """
        key = ("replicate_file", self.name, filename)
        url: str = inputs.remembered(owner, key)
        if not inputs.is_missing(url):
            return url
        if len(data) > MAX_UPLOAD_BYTES:
            raise invalid_input(
                f"{owner.field} is over Replicate's {MAX_UPLOAD_BYTES} byte file limit",
                owner.field,
            )
        form = form_parts([], [("content", filename, kind, data)])
        url_files = f"{self.base_url}/files"
        doc = await self.send_json("POST", url_files, headers=self._headers(), data=form)
        urls = doc.get("urls") if isinstance(doc, dict) else None
        found = urls.get("get") if isinstance(urls, dict) else None
        if (
            not isinstance(found, str)
            or not found.startswith(("https://", "http://"))
            or len(found) > MAX_FILE_URL_CHARS
        ):
            raise no_image(self.name, "file upload answer has no usable urls.get")
        inputs.remember(owner, key, found)
        return found

    async def _predict(self, model: str, payload: dict[str, Any]) -> list[GeneratedImage]:
        name, version = split_version(model)
        headers = self._headers()
        if version:
            url, body = f"{self.base_url}/predictions", {"version": version, "input": payload}
        else:
            url, body = f"{self.base_url}/models/{name}/predictions", {"input": payload}
        create_headers = dict(headers)
        if self.wait_s:
            create_headers["Prefer"] = f"wait={self.wait_s}"
        prediction = await self.send_json("POST", url, headers=create_headers, json=body)
        if not isinstance(prediction, dict) or not prediction.get("id"):
            raise no_image(self.name, "create answer has no prediction id")
        if prediction.get("status") in RUNNING:
            prediction = await self._follow(prediction, headers)
        return self._output(prediction)

    async def _follow(self, prediction: dict[str, Any], headers: dict[str, str]) -> Any:
        found = prediction.get("urls")
        urls: dict[str, Any] = found if isinstance(found, dict) else {}
        own = f"{self.base_url}/predictions/{prediction['id']}"
        get_url = self.own_url(str(urls.get("get") or own), "urls.get")
        cancel_url = self.own_url(str(urls.get("cancel") or f"{own}/cancel"), "urls.cancel")

        async def fetch() -> Any:
            return await self.send_json("GET", get_url, headers=headers)

        async def cancel() -> Any:
            return await self.send("POST", cancel_url, headers=headers)

        return await self.jobs.wait(
            fetch, lambda p: not isinstance(p, dict) or p.get("status") not in RUNNING,
            cancel=cancel,
        )  # fmt: skip

    def _output(self, prediction: Any) -> list[GeneratedImage]:
        if not isinstance(prediction, dict):
            raise no_image(self.name, "prediction is not an object")
        status = prediction.get("status")
        if status != "succeeded":
            error = str(prediction.get("error") or f"prediction {status}")
            if status == "failed" and looks_like_policy(error):
                raise content_policy(self.name, error)
            raise job_failed(self.name, error)
        output = prediction.get("output")
        items = output if isinstance(output, list) else [output]
        urls = [o for o in items if isinstance(o, str) and o.startswith(("http", "data:"))]
        if not urls:
            raise no_image(self.name, "prediction output holds no image URL")
        return [GeneratedImage(url=u) for u in urls]
