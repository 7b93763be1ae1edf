"""One upstream call, as a provider's functions see it (``spec.Calls``).

``Call`` is the normalised call the body builder gets; ``Wire`` is the request it returns;
``Answer`` is the provider's successful answer the parser reads; ``Job`` says where a queue
provider's job is polled; ``Outgoing`` is what a per-call signature covers. ``spec.py`` holds
the declaration these serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

import orjson

from ...errors import UpstreamConnectionError
from ...request import ImageRequest, UploadedFile
from . import jsonsplice
from .spec import M

if TYPE_CHECKING:
    from .runner import SpecProvider


@dataclass(slots=True)
class Wire:
    """One upstream request. ``path`` is appended to the base URL; an absolute URL (a poll
    URL from an answer) must be on the provider's own host. ``fields`` set (even empty)
    makes a multipart body of ``fields`` then ``files``; else ``json`` is the body."""

    path: str
    method: str = "POST"
    json: Any = None
    fields: list[tuple[str, str]] | None = None
    files: list[tuple[str, UploadedFile]] = field(default_factory=list)
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    what: str = "a URL from the answer"  # names an absolute URL in the off-host failure
    # ``path`` is already percent-encoded and is sent byte for byte (a signed path: Bedrock's
    # ``/model/<id %-encoded>/invoke``); else the HTTP client normalises it
    encoded: bool = False


class Answer:
    """A provider's successful answer: status, headers and the body, decoded on demand."""

    __slots__ = ("_doc", "body", "headers", "provider", "status")

    def __init__(self, provider: str, status: int, headers: Mapping[str, str], body: bytes):
        self.provider, self.status, self.headers, self.body = provider, status, headers, body
        self._doc: Any = _UNDECODED

    def doc(self) -> Any:
        """The body as JSON (parsed once; base64 values cut out first, ``jsonsplice``)."""
        if self._doc is _UNDECODED:
            try:
                self._doc = jsonsplice.loads(self.body)
            except orjson.JSONDecodeError:
                raise UpstreamConnectionError(f"{self.provider}: response is not JSON") from None
        return self._doc

    @property
    def content_type(self) -> str:
        return str(self.headers.get("Content-Type", "")).split(";")[0].strip().lower()


_UNDECODED: Any = object()


@dataclass(slots=True)
class Call(Generic[M]):
    """One upstream call of a request, as the body builder sees it."""

    provider: str  # the config entry's name (for messages)
    model: str  # the model as asked, without ``provider/``
    entry: M  # its row in the model table
    request: ImageRequest
    settings: Mapping[str, Any]  # the entry's options, read once by ``ProviderSpec.setup``
    count: int = 1  # images this call asks for
    index: int = 0  # which of the fanned-out calls
    seed: int | None = None  # the request's seed, offset by ``index`` when the spec says so
    images: Sequence[str] = ()  # input images encoded as ``Inputs.encode`` asks
    mask: UploadedFile | None = None  # the mask in the provider's convention, if any
    mask_text: str | None = None  # that mask encoded like the images (JSON bodies)


@dataclass(frozen=True, slots=True)
class Job:
    """Where a queue provider's submit answer says to poll, cancel and fetch the result."""

    poll: Wire
    cancel: Wire | None = None
    result: Wire | None = None  # None: the last poll answer is the result


# The runner's ``exchange``, handed to ``Inputs.prepare``: one request, auth and error
# translation included.
Send = Callable[[Wire], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request about to be sent, as ``Calls.sign`` sees it."""

    method: str
    url: str  # without the query ``params``
    headers: Mapping[str, str]  # the headers so far (the entry's ``headers`` are added last)
    body: bytes | None  # the exact bytes sent (b"" for none); None: a streamed multipart form


# Per-call auth, awaited by the runner just before each request is sent: (the entry, the
# request) → headers to add (Vertex's OAuth token, Bedrock's SigV4 signature).
Sign = Callable[["SpecProvider[Any]", Outgoing], Awaitable[Mapping[str, str]]]
