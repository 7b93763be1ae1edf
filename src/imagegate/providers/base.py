"""The provider boundary: a normalised ``ImageRequest`` in, an ``ImageResult`` out.

A provider module only translates wire formats. It declares what each model can do
(``Capabilities``) so the routing plan can skip a candidate instead of sending a request that
must fail, and it raises ``UpstreamFailure`` subclasses for the executor to judge::

    provider = registry.get("openai")
    result = await provider.call("dall-e-3", request)

Per-attempt timeouts and cancellation are the executor's job: adapters just await, and
polling adapters must only sleep with ``asyncio.sleep`` so a cancel stops them cleanly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..request import ImageRequest, ImageResult, Operation


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model of a provider can do. ``None`` for sizes means any size."""

    operations: frozenset[Operation] = frozenset({"generations"})
    sizes: frozenset[str] | None = None
    max_n: int = 10
    output_formats: frozenset[str] = frozenset({"png"})
    max_images: int = 1  # input images accepted by edits
    mask: bool = False
    max_seed: int | None = None  # seeds the model takes: 0..max_seed (None: any)
    # Why this model can serve nothing at all (e.g. a name the adapter does not know): said
    # instead of "does not support images.generations", which would hide the cause.
    refused: str | None = None

    @classmethod
    def unknown_model(cls, provider: str, model: str, known: Iterable[str]) -> Capabilities:
        """Nothing, because ``model`` is not in the adapter's table (listed in the reason)."""
        names = ", ".join(sorted(known))
        return cls(
            operations=frozenset(),
            refused=f"unknown model {model!r} for provider {provider} (known: {names})",
        )

    @classmethod
    def nothing(cls, why: str) -> Capabilities:
        """A model the adapter knows but can serve nothing with, and why."""
        return cls(operations=frozenset(), refused=why)

    def refuse(self, request: ImageRequest) -> str | None:
        """Why this model cannot serve the request, or None when it can."""
        found = self.refusal(request)
        return found[1] if found else None

    def refusal(self, request: ImageRequest) -> tuple[str, str] | None:
        """``(request field at fault, why)`` when this model cannot serve the request."""
        if self.refused is not None:
            return "model", self.refused
        if request.operation not in self.operations:
            return "model", f"does not support images.{request.operation}"
        if self.sizes is not None and request.size and request.size not in self.sizes:
            return "size", f"does not support size {request.size}"
        if request.output_format and request.output_format not in self.output_formats:
            return "output_format", f"does not support output_format {request.output_format}"
        if request.operation == "edits" and len(request.images) > self.max_images:
            return "image", f"accepts at most {self.max_images} input image(s)"
        if request.operation == "edits" and request.mask is not None and not self.mask:
            return "mask", "does not accept a mask"
        if self.max_seed is not None and request.seed is not None:
            if not 0 <= request.seed <= self.max_seed:
                return "seed", f"takes a seed from 0 to {self.max_seed}"
        if request.n_images > self.max_n:
            return "n", f"returns at most {self.max_n} image(s) per request (n={request.n_images})"
        return None


@runtime_checkable
class Provider(Protocol):
    """One configured provider (one shared HTTP session, many models)."""

    name: str

    def capabilities(self, model: str) -> Capabilities:
        """Capabilities of ``model`` (the part after ``provider/``)."""
        ...

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        """Run one attempt of ``request`` on ``model``; raise ``UpstreamFailure`` on failure."""
        ...

    async def close(self) -> None:
        """Release sessions and pools."""
        ...
