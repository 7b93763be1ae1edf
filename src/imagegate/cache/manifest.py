"""The cached value: a small JSON manifest pointing at blobs, never the image bytes.

``{"v": 1, "model", "created", "usage", "extras", "images": [{"key", "source",
"revised_prompt", "mime"}]}`` — a few hundred bytes however large the images, so Redis stays
small and one image is stored once in the blob store.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..blobs import is_blob_key
from ..output import Served, StoredImage

VERSION = 1


def encode(served: Served) -> bytes:
    images = []
    for image in served.images:
        if image.key is None:
            raise ValueError("every image must be stored before it is cached")
        images.append(
            {
                "key": image.key,
                "source": image.source,
                "revised_prompt": image.revised_prompt,
                "mime": image.mime,
            }
        )
    doc: dict[str, Any] = {
        "v": VERSION,
        "model": served.model,
        "created": served.created,
        "usage": served.usage,
        "extras": served.extras,
        "images": images,
    }
    return orjson.dumps(doc)


def decode(raw: bytes) -> Served | None:
    """The manifest as a ``Served`` (keys only, nothing loaded); None when unreadable."""
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            return None
        images = []
        for item in doc["images"]:
            key, source = item["key"], item["source"]
            if not is_blob_key(key) or source not in ("url", "b64_json"):
                return None
            images.append(
                StoredImage(
                    source=source,
                    key=key,
                    mime=item.get("mime"),
                    revised_prompt=item.get("revised_prompt"),
                )
            )
        usage = doc.get("usage")
        extras = doc.get("extras") or {}
        return Served(
            images=images,
            model=str(doc["model"]),
            created=int(doc["created"]),
            usage=usage if isinstance(usage, dict) else None,
            extras=extras if isinstance(extras, dict) else {},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
