"""OpenAI Images API adapter (generations JSON; edits and variations multipart).

Wire format: https://platform.openai.com/docs/api-reference/images
Only parameters the caller gave are sent; ``response_format`` is never sent to gpt-image
models (they always answer base64 and reject the field). The same adapter serves any
OpenAI-compatible images server through ``base_url``.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from ..config import ProviderConfig
from ..errors import UpstreamConnectionError
from ..request import GeneratedImage, ImageRequest, ImageResult, UploadedFile
from .base import Capabilities
from .form import form_body
from .http import HTTPProvider

ALL_FORMATS = frozenset({"png", "jpeg", "webp"})
GPT_IMAGE = Capabilities(
    operations=frozenset({"generations", "edits"}),
    sizes=frozenset({"auto", "1024x1024", "1536x1024", "1024x1536"}),
    max_n=10,
    output_formats=ALL_FORMATS,
    max_images=16,
    mask=True,
)
MODELS: dict[str, Capabilities] = {
    "dall-e-2": Capabilities(
        operations=frozenset({"generations", "edits", "variations"}),
        sizes=frozenset({"256x256", "512x512", "1024x1024"}),
        max_n=10,
        mask=True,
    ),
    "dall-e-3": Capabilities(
        operations=frozenset({"generations"}),
        sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
        max_n=1,
    ),
}
UNKNOWN = Capabilities(
    operations=frozenset({"generations", "edits", "variations"}),
    output_formats=ALL_FORMATS,
    max_images=16,
    mask=True,
)
GEN_FIELDS = (
    "prompt", "n", "size", "quality", "style", "background", "moderation",
    "output_format", "output_compression", "response_format", "user",
)  # fmt: skip
EDIT_FIELDS = (
    "prompt", "n", "size", "quality", "background", "output_format",
    "output_compression", "response_format", "user",
)  # fmt: skip
VARIATION_FIELDS = ("n", "size", "response_format", "user")


def is_gpt_image(model: str) -> bool:
    return model.startswith("gpt-image") or model.startswith("chatgpt-image")


def parse_images_response(doc: Any, provider: str) -> ImageResult:
    """OpenAI's ``{created, data: [...], usage?}`` → ``ImageResult``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UpstreamConnectionError(f"{provider}: response has no data list")
    images = []
    for item in doc["data"]:
        if not isinstance(item, dict):
            continue
        images.append(
            GeneratedImage(
                b64=item.get("b64_json"),
                url=item.get("url"),
                revised_prompt=item.get("revised_prompt"),
            )
        )
    if not images or not all(i.b64 or i.url for i in images):
        raise UpstreamConnectionError(f"{provider}: response holds no image")
    created = doc.get("created")
    return ImageResult(
        images=images,
        created=int(created) if isinstance(created, int | float) else None,
        usage=doc.get("usage") if isinstance(doc.get("usage"), dict) else None,
        output_format=doc.get("output_format"),
        size=doc.get("size"),
        quality=doc.get("quality"),
    )


class OpenAIProvider(HTTPProvider):
    """``openai/<model>``: OpenAI or any server speaking its images API."""

    default_base_url = "https://api.openai.com/v1"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")

    def capabilities(self, model: str) -> Capabilities:
        if is_gpt_image(model):
            return GPT_IMAGE
        return MODELS.get(model, UNKNOWN)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        org = self.config.option("organization")
        if org:
            headers["OpenAI-Organization"] = str(org)
        return headers

    def _fields(self, model: str, request: ImageRequest, names: tuple[str, ...]) -> dict[str, Any]:
        params = request.params()
        out: dict[str, Any] = {"model": model}
        for name in names:
            if name in params:
                out[name] = params[name]
        if is_gpt_image(model):
            out.pop("response_format", None)
        return out

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        url = f"{self.base_url}/images/{request.operation}"
        if request.operation == "generations":
            body = self._fields(model, request, GEN_FIELDS)
            doc = await self.send_json("POST", url, headers=self._headers(), json=body)
            return parse_images_response(doc, self.name)
        names = EDIT_FIELDS if request.operation == "edits" else VARIATION_FIELDS
        doc = await self._send_form(url, self._fields(model, request, names), request)
        return parse_images_response(doc, self.name)

    async def _send_form(
        self,
        url: str,
        fields: dict[str, Any],
        request: ImageRequest,
        *,
        params: dict[str, str] | None = None,
    ) -> Any:
        """Edits and variations as multipart: text fields, ``image`` (``image[]`` when several),
        and the mask on edits. In-memory uploads go as a ``form.FormBody``; spooled files are
        streamed through aiohttp's ``FormData`` and closed afterwards."""
        images = request.images if request.operation == "edits" else request.images[:1]
        image_field = "image[]" if len(images) > 1 else "image"
        uploads = [(image_field, upload) for upload in images]
        if request.operation == "edits" and request.mask is not None:
            uploads.append(("mask", request.mask))
        text = [(key, str(value)) for key, value in fields.items()]
        body = form_body(text, uploads)
        if body is not None:
            return await self.send_json(
                "POST", url, headers=self._headers(), data=body, params=params
            )
        form = aiohttp.FormData(quote_fields=False)
        files: list[Any] = []
        try:
            for key, value in text:
                form.add_field(key, value)
            for name, upload in uploads:
                files.append(self._add_file(form, name, upload))
            return await self.send_json(
                "POST", url, headers=self._headers(), data=form, params=params
            )
        finally:
            for fh in files:
                if fh is not None:
                    fh.close()

    @staticmethod
    def _add_file(form: aiohttp.FormData, field: str, upload: UploadedFile) -> Any:
        """In-memory uploads go as bytes (aiohttp copies a BytesIO); spooled ones stream."""
        if upload.data is not None:
            form.add_field(
                field, upload.data, filename=upload.filename, content_type=upload.content_type
            )
            return None
        fh = upload.open()
        form.add_field(field, fh, filename=upload.filename, content_type=upload.content_type)
        return fh
