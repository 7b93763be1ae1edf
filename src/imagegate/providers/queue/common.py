"""What the queue providers (fal, Replicate, BFL) share: their capability shorthand, the
job-state test, requests to URLs an answer names, and the result they build."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import UpstreamConnectionError
from ...request import GeneratedImage, ImageResult, Operation
from ..base import Capabilities
from ..core.call import Answer, Call, Wire

GEN: frozenset[Operation] = frozenset({"generations"})
EDIT: frozenset[Operation] = frozenset({"edits"})
PNG_JPEG = frozenset({"png", "jpeg"})


def caps(
    ops: frozenset[Operation],
    formats: frozenset[str] = PNG_JPEG,
    *,
    mask: bool = False,
    max_images: int = 1,
) -> Capabilities:
    return Capabilities(operations=ops, output_formats=formats, mask=mask, max_images=max_images)


def finished_unless(pending: frozenset[str]) -> Callable[[Answer], bool]:
    """``Polling.finished`` for a job whose ``status`` is one of ``pending`` while it runs
    (an answer that is not an object ends the wait too: the parser refuses it)."""

    def finished(answer: Answer) -> bool:
        doc = answer.doc()
        return not isinstance(doc, dict) or doc.get("status") not in pending

    return finished


def followed(call: Call[Any], given: Any, default: str, what: str, method: str = "GET") -> Wire:
    """A request to the URL an answer gave for ``what`` or, when it gave none, to ``default``
    (a path on the entry's base URL). A given URL must be absolute: the runner then calls it
    only on the provider's own host (a relative one could be read as another host)."""
    if not given:
        return Wire(default, method, what=what)
    url = str(given)
    if not url.startswith(("https://", "http://")):
        raise UpstreamConnectionError(f"{call.provider}: {what} is not on the provider's host")
    return Wire(url, method, what=what)


def whole_option(value: Any) -> int | None:
    """A whole number from config (values may arrive as strings from env or YAML); None when
    unset or garbage, so the provider's own default applies instead of failing every call."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def result(
    call: Call[Any], images: Sequence[GeneratedImage], size: str | None = None
) -> ImageResult:
    return ImageResult(
        images=list(images),
        created=int(time.time()),
        output_format=call.request.output_format,
        size=size,
    )
