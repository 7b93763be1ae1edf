"""Amazon Bedrock adapter: ``InvokeModel`` over HTTPS, signed with SigV4 by botocore.

Wire format: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html
(``POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/invoke``, JSON body,
SigV4 service ``bedrock``; errors are the status plus ``x-amzn-ErrorType`` and
``{"message"}``). Model bodies:

- Titan Image Generator G1 v1/v2 and Nova Canvas (same shape):
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html,
  https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html —
  ``taskType`` ``TEXT_IMAGE`` / ``INPAINTING`` / ``IMAGE_VARIATION`` with
  ``imageGenerationConfig`` ``{numberOfImages ≤ 5, width, height, quality, seed}``;
  answer ``{"images": [base64], "error"}``.
- Stability on Bedrock (SD3.5 Large, Stable Image Core/Ultra):
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-image-core-text-image-request-response.html
  — ``{prompt, mode, aspect_ratio, output_format, seed}`` → ``{seeds, finish_reasons, images}``.

Translation: Titan's fixed sizes (plus OpenAI's standard sizes, mapped to the nearest); Nova
takes any size scaled into 320–4096 and rounded to 16; Stability takes the nearest aspect
ratio. ``quality`` hd/high → ``premium``. Edits with a mask (or an image with transparent
pixels) are ``INPAINTING`` with the mask converted to Titan's black-is-edit and the image sent
opaque; without one they are ``IMAGE_VARIATION`` guided by the prompt (``bedrock_images``).
``seed`` + i goes to the i-th parallel call so they do not repeat an image; Nova takes seeds
0–858,993,459 only (a seed outside is a 400; offsets wrap within the range). A Stability
answer whose ``finish_reasons`` holds a filter reason is a content-policy refusal whether or
not it carries ``images``. Credentials: ``access_key_id`` /
``secret_access_key`` / ``session_token`` in the entry, else botocore's usual chain (env,
profile, role); or ``api_key`` for a Bedrock API key (``Authorization: Bearer``).
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import time
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from ..config import ProviderConfig
from ..errors import UpstreamConnectionError, UpstreamHTTPError
from ..net import BodyTooLarge, read_capped
from ..request import GeneratedImage, ImageRequest, ImageResult, Operation
from . import inputs
from .base import Capabilities
from .bedrock_images import edit_mask, opaque_b64
from .failures import (
    content_policy,
    invalid_input,
    job_failed,
    looks_like_policy,
    no_image,
    not_configured,
)
from .fanout import fan_out
from .http import HTTPProvider, error_message, map_status, parse_retry_after
from .polling import interval_option
from .sizes import aspect_ratio, nearest_size, parse_wh

Family = Literal["titan", "nova", "stability"]
ALL_OPS: frozenset[Operation] = frozenset({"generations", "edits", "variations"})
TITAN_SIZES = (
    (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768), (576, 384),
    (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152), (448, 576), (1152, 896),
    (576, 448), (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408), (320, 704),
    (1408, 640), (704, 320), (1152, 640), (1173, 640),
)  # fmt: skip
OPENAI_SIZES = ("256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024",
                "1024x1536", "auto")  # fmt: skip
RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
MAX_PER_CALL = 5  # Titan and Nova: numberOfImages 1..5
# Nova Canvas seeds: 0..858,993,459 (AWS's own Nova example draws its seed from that range,
# https://docs.aws.amazon.com/nova/latest/userguide/code-examples-image.html).
NOVA_MAX_SEED = 858_993_459
TITAN = Capabilities(
    operations=ALL_OPS,
    sizes=frozenset(f"{w}x{h}" for w, h in TITAN_SIZES) | frozenset(OPENAI_SIZES),
    output_formats=frozenset({"png"}),
    max_images=1,
    mask=True,
)
NOVA = Capabilities(
    operations=ALL_OPS, output_formats=frozenset({"png"}), max_images=5, mask=True
)  # fmt: skip
STABILITY_GEN = Capabilities(output_formats=frozenset({"png", "jpeg"}))
STABILITY_EDIT = Capabilities(
    operations=frozenset({"generations", "edits"}), output_formats=frozenset({"png", "jpeg"})
)
# What ``family`` recognises, as the "known" list of an unknown model's refusal.
KNOWN = ("amazon.titan-image-generator-*", "amazon.nova-canvas-*", "stability.*")
# x-amzn-ErrorType → (status, orq code) where the plain status would mislead.
ERROR_TYPES = {
    "ThrottlingException": (429, "rate_limit_exceeded"),
    "ServiceQuotaExceededException": (429, "rate_limit_exceeded"),
    "ModelNotReadyException": (503, "provider_overloaded"),
    "ModelErrorException": (502, "provider_error"),
    "UnrecognizedClientException": (401, "provider_credential_invalid"),
    "InvalidSignatureException": (401, "provider_credential_invalid"),
    "ExpiredTokenException": (401, "provider_credential_invalid"),
    "AccessDeniedException": (403, "insufficient_scope"),
}


def family(model: str) -> Family | None:
    if "titan-image-generator" in model:
        return "titan"
    if "nova-canvas" in model:
        return "nova"
    if model.startswith("stability.") or ".stability." in model:
        return "stability"
    return None


def call_seed(seed: int | None, index: int, top: int | None = None) -> int | None:
    """The seed for the ``index``-th parallel call: parallel calls must not repeat an image.

    With ``top`` (the model's largest seed) the offset wraps round to 0 instead of leaving
    the range; the caller's own seed has been checked against it already.
    """
    if seed is None:
        return None
    return (seed + index) % (top + 1) if top is not None else seed + index


def nova_size(size: str | None) -> tuple[int, int]:
    """Any ``WxH`` brought into Nova Canvas's rules: sides 320–4096 in steps of 16, ≤ 4.19 MP,
    aspect ratio within 1:4..4:1 (a more extreme ratio is narrowed to 4:1)."""
    w, h = (float(v) for v in parse_wh(size) or (1024, 1024))
    w, h = max(w, h / 4), max(h, w / 4)
    scale = min(1.0, 4096 / max(w, h), math.sqrt(4_194_304 / (w * h)))
    if min(w, h) * scale < 320:
        scale = 320 / min(w, h)

    def snap(v: float) -> int:
        return min(4096, max(320, int(v // 16) * 16))

    return snap(w * scale), snap(h * scale)


class BedrockProvider(HTTPProvider):
    """``bedrock/<modelId>``, e.g. ``bedrock/amazon.nova-canvas-v1:0``."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.region = (
            config.region
            or config.option("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        default = f"https://bedrock-runtime.{self.region}.amazonaws.com"
        self.endpoint = (config.base_url or default).rstrip("/")
        self._credentials: Any = None

    def capabilities(self, model: str) -> Capabilities:
        fam = family(model)
        if fam == "titan":
            return TITAN
        if fam == "nova":
            return NOVA
        if fam == "stability":
            edits = "sd3-5" in model or "ultra" in model
            return STABILITY_EDIT if edits else STABILITY_GEN
        return Capabilities.unknown_model(self.name, model, KNOWN)

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        fam = family(model)
        if fam is None:
            raise invalid_input(self.capabilities(model).refused or "unknown model", "model")
        if fam == "stability":
            return await self._stability(model, request)
        return await self._amazon(model, fam, request)

    # --- Titan and Nova Canvas -----------------------------------------------------------
    async def _amazon(self, model: str, fam: Family, request: ImageRequest) -> ImageResult:
        top = NOVA_MAX_SEED if fam == "nova" else None
        if top is not None and request.seed is not None and not 0 <= request.seed <= top:
            raise invalid_input(f"Nova Canvas takes a seed from 0 to {top}", "seed")
        task, config = await self._amazon_task(fam, request)
        n = request.n_images

        async def one(i: int) -> list[GeneratedImage]:
            call = {**config, "numberOfImages": min(MAX_PER_CALL, n - i * MAX_PER_CALL)}
            if request.seed is not None:
                call["seed"] = call_seed(request.seed, i, top)
            doc = await self.invoke(model, {**task, "imageGenerationConfig": call})
            if isinstance(doc, dict) and doc.get("error"):
                message = str(doc["error"])
                if looks_like_policy(message):
                    raise content_policy(self.name, message)
                raise job_failed(self.name, message)
            if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
                raise no_image(self.name)
            return [GeneratedImage(b64=b, mime="image/png") for b in doc["images"]]

        images = await fan_out(math.ceil(n / MAX_PER_CALL), one)
        if not images:
            raise no_image(self.name)
        size = f"{config['width']}x{config['height']}" if "width" in config else None
        return ImageResult(images=images, created=int(time.time()), output_format="png", size=size)

    async def _amazon_task(
        self, fam: Family, request: ImageRequest
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(task fields, imageGenerationConfig without numberOfImages)."""
        config: dict[str, Any] = {}
        if request.quality in ("hd", "high"):
            config["quality"] = "premium"
        elif request.quality in ("standard", "medium", "low"):
            config["quality"] = "standard"
        if request.operation == "generations":
            w, h = (
                nearest_size(request.size, TITAN_SIZES)
                if fam == "titan"
                else nova_size(request.size)
            )
            config["width"], config["height"] = w, h
            params: dict[str, Any] = {"text": request.prompt or ""}
            return {"taskType": "TEXT_IMAGE", "textToImageParams": params}, config
        first = request.images[0]
        mask: bytes | None = None
        if request.operation == "edits":
            mask = await edit_mask(first, request.mask)
        if mask is not None:
            inpaint: dict[str, Any] = {
                "image": await opaque_b64(first),
                "maskImage": base64.b64encode(mask).decode("ascii"),
            }
            if request.prompt:
                inpaint["text"] = request.prompt
            return {"taskType": "INPAINTING", "inPaintingParams": inpaint}, config
        variation: dict[str, Any] = {"images": [await opaque_b64(i) for i in request.images]}
        if request.prompt:
            variation["text"] = request.prompt
        return {"taskType": "IMAGE_VARIATION", "imageVariationParams": variation}, config

    # --- Stability models on Bedrock -----------------------------------------------------
    async def _stability(self, model: str, request: ImageRequest) -> ImageResult:
        body: dict[str, Any] = {"prompt": request.prompt or ""}
        if request.operation == "generations":
            body["mode"] = "text-to-image"
            body["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
        else:
            body["mode"] = "image-to-image"
            body["image"] = await inputs.b64(request.images[0])
            body["strength"] = min(1.0, interval_option(self.config.option("image_strength"), 0.5))
        if request.output_format:
            body["output_format"] = request.output_format

        async def one(i: int) -> list[GeneratedImage]:
            seed = call_seed(request.seed, i)
            doc = await self.invoke(model, body if seed is None else {**body, "seed": seed})
            if not isinstance(doc, dict):
                raise no_image(self.name)
            # A filtered answer may carry no ``images`` at all, {"finish_reasons": ["Filter
            # reason: prompt"]}, so the reasons are read first:
            # https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-ultra-text-image-request-response.html
            found = doc.get("finish_reasons")
            reasons = [str(r) for r in found if r] if isinstance(found, list) else []
            if reasons:
                why = "; ".join(reasons)[:500]
                if "filter" in why.lower():
                    raise content_policy(self.name, why)
                raise job_failed(self.name, why)
            if not isinstance(doc.get("images"), list):
                raise no_image(self.name)
            mime = f"image/{request.output_format or 'png'}"
            return [GeneratedImage(b64=b, mime=mime) for b in doc["images"]]

        images = await fan_out(request.n_images, one)
        return ImageResult(
            images=images, created=int(time.time()), output_format=request.output_format
        )

    # --- the signed exchange -------------------------------------------------------------
    async def invoke(self, model: str, body: dict[str, Any]) -> Any:
        """One signed ``InvokeModel`` call; the decoded JSON answer or an ``UpstreamFailure``."""
        url = f"{self.endpoint}/model/{quote(model, safe='')}/invoke"
        payload = orjson.dumps(body)
        headers = await self._sign(url, payload)
        try:
            async with self.session.post(
                URL(url, encoded=True), data=payload, headers={**self.config.headers, **headers}
            ) as resp:
                raw = await read_capped(resp, self.max_response_bytes)
                status, resp_headers = resp.status, resp.headers
        except asyncio.CancelledError:
            raise
        except BodyTooLarge:
            raise UpstreamConnectionError(
                f"{self.name}: response over {self.max_response_bytes} bytes"
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise UpstreamConnectionError(f"{self.name}: broken response: {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectionError(f"{self.name}: connection failed: {exc}") from None
        if status >= 400:
            raise self._error(status, raw, resp_headers)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamConnectionError(f"{self.name}: response is not JSON") from None

    def _error(self, status: int, raw: bytes, headers: Any) -> UpstreamHTTPError:
        message, _ = error_message(raw, status)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = {}
        if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
            message = doc["Message"]
        kind = str(headers.get("x-amzn-ErrorType") or (doc.get("__type") if isinstance(
            doc, dict) else "") or "")  # fmt: skip
        kind = kind.split(":")[0].split("#")[-1]
        text = f"{self.name}: {kind + ': ' if kind else ''}{message}"
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if status == 400 and looks_like_policy(message):
            return UpstreamHTTPError(text, status=400, code="content_policy_violation")
        mapped = ERROR_TYPES.get(kind)
        if mapped is not None:
            return UpstreamHTTPError(
                text, status=mapped[0], code=mapped[1], retry_after_s=retry_after
            )
        return UpstreamHTTPError(
            text, status=status, code=map_status(status, message, kind), retry_after_s=retry_after
        )

    async def _sign(self, url: str, payload: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:  # a Bedrock API key replaces SigV4
            headers["Authorization"] = f"Bearer {self.config.api_key}"
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        frozen = await self._frozen_credentials()
        request = AWSRequest(method="POST", url=url, data=payload, headers=headers)
        signer = SigV4Auth(frozen, "bedrock", self.region)
        if len(payload) > 1024 * 1024:  # hashing a large body must not stall the loop
            await asyncio.to_thread(signer.add_auth, request)
        else:
            signer.add_auth(request)
        return {k: str(v) for k, v in request.headers.items()}

    async def _frozen_credentials(self) -> Any:
        if self._credentials is None:
            self._credentials = await asyncio.to_thread(self._load_credentials)
        creds = self._credentials
        refresh_needed = getattr(creds, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    def _load_credentials(self) -> Any:
        from botocore.credentials import Credentials
        from botocore.session import get_session

        key = self.config.option("access_key_id")
        secret = self.config.option("secret_access_key")
        if key and secret:
            return Credentials(str(key), str(secret), self.config.option("session_token"))
        found = get_session().get_credentials()
        if found is None:
            raise not_configured(
                self.name,
                "no AWS credentials (set api_key, access_key_id/secret_access_key, or the "
                "AWS_* environment)",
            )
        return found
