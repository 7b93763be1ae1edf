"""Answer images in the requested ``response_format`` whatever the provider returned.

Spine version: ``b64_json`` from inline images; ``url`` as a ``data:`` URI until the image
store lands. Absent ``response_format`` keeps the provider's own format.
"""

from __future__ import annotations

import base64
from typing import Any

from .errors import ProviderError
from .request import GeneratedImage, ImageResult


def _b64(image: GeneratedImage) -> str:
    if image.b64 is not None:
        return image.b64
    raw = image.raw()
    if raw is None:
        raise ProviderError("provider returned a remote URL; the image store is not enabled")
    return base64.b64encode(raw).decode("ascii")


class Output:
    """Turns a provider result into ``data`` items; returns blob keys (none in the spine)."""

    async def answer(
        self, result: ImageResult, response_format: str | None, base_url: str
    ) -> tuple[list[dict[str, Any]], list[str]]:
        items: list[dict[str, Any]] = []
        for image in result.images:
            fmt = response_format or ("url" if image.url and image.b64 is None else "b64_json")
            item: dict[str, Any]
            if fmt == "b64_json":
                item = {"b64_json": _b64(image)}
            elif image.url is not None:
                item = {"url": image.url}
            else:
                mime = image.mime or f"image/{result.output_format or 'png'}"
                item = {"url": f"data:{mime};base64,{_b64(image)}"}
            if image.revised_prompt is not None:
                item["revised_prompt"] = image.revised_prompt
            items.append(item)
        return items, []

    async def close(self) -> None:
        return None
