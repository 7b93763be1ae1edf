"""What a provider is, as data: ``ProviderSpec`` plus two functions.

A provider module declares one ``ProviderSpec``: how it authenticates, its base URL, its model
table (``ModelSpec`` entries: what each model can do, plus the adapter's own fields), how many
images one upstream call returns, how masks and input images travel, which config keys it
reads, and two functions the runner (``runner.SpecProvider``) calls for every upstream call::

    build(call: Call) -> Wire                    # normalised call → the wire request
    parse(call: Call, answer: Answer) -> ImageResult   # the provider's answer → images

Everything else (inputs, batching, seeds, fan-out, polling, policy mapping, errors) is the
runner's, written once. docs/adding-a-provider.md walks through a complete example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import orjson

from ...config import ProviderConfig
from ...errors import UpstreamConnectionError, UpstreamHTTPError
from ...request import ImageRequest, ImageResult, UploadedFile
from ..base import Capabilities
from . import jsonsplice
from .masks import MaskStyle


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of a provider. Adapters subclass it to add their own fields (an endpoint
    path, an upstream model name...); the runner reads only ``caps``."""

    caps: Capabilities


M = TypeVar("M", bound=ModelSpec)


@dataclass(frozen=True, slots=True)
class Auth:
    """How the entry's ``api_key`` travels: ``bearer`` (``Authorization: <scheme> <key>``),
    ``header`` (``<name>: <key>``), ``query`` (``?<name>=<key>``) or ``none``."""

    style: Literal["bearer", "header", "query", "none"] = "bearer"
    name: str = "Authorization"
    scheme: str = "Bearer"


BEARER = Auth()
# A custom hook instead of ``Auth``: the entry's config → the auth headers.
AuthHook = Callable[[ProviderConfig], Mapping[str, str]]


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
    images: Sequence[str] = ()  # input images encoded as ``ProviderSpec.encode`` asks
    mask: UploadedFile | None = None  # the mask in the provider's convention, if any
    mask_text: str | None = None  # that mask encoded like the images (JSON bodies)


@dataclass(frozen=True, slots=True)
class Job:
    """Where a queue provider's submit answer says to poll, cancel and fetch the result."""

    poll: Wire
    cancel: Wire | None = None
    result: Wire | None = None  # None: the last poll answer is the result


@dataclass(frozen=True, slots=True)
class Polling:
    """Submit → poll → result, for providers that answer a job first (fal, Replicate, BFL).

    ``submitted`` reads the submit answer (None: it is already final, e.g. a synchronous
    wait that finished); ``finished`` says whether a poll answer ends the wait; ``check``
    may raise for a final state that is a failure (a moderated or failed job) before the
    result is fetched. Polls wait ``interval_s`` (config ``poll_interval_s`` overrides).
    """

    submitted: Callable[[Call[Any], Answer], Job | None]
    finished: Callable[[Answer], bool]
    check: Callable[[Call[Any], Answer], None] | None = None
    interval_s: float = 1.0


class Keys(NamedTuple):
    """What one adapter type reads from its entry, beyond the keys every entry accepts.

    ``required``: groups of keys, one of each group must be set (else the config is refused).
    ``optional``: the adapter-specific keys it reads via ``ProviderConfig.option``.
    ``credentials``: one of these must be set for the entry to be served (empty: none needed);
    a missing credential is not an error, since keys may come from env later.
    """

    required: tuple[tuple[str, ...], ...] = ()
    optional: frozenset[str] = frozenset()
    credentials: tuple[str, ...] = ()


API_KEY = Keys(credentials=("api_key",))  # the default: an ``api_key`` and nothing else


@dataclass(frozen=True, slots=True)
class ProviderSpec(Generic[M]):
    """One provider type, declared. Only ``type``, ``build`` and ``parse`` are required."""

    type: str
    build: Callable[[Call[M]], Wire]
    parse: Callable[[Call[M], Answer], ImageResult]
    base_url: str = ""  # "" : the entry must give one
    auth: Auth | AuthHook = BEARER
    accept: str = "application/json"
    models: Mapping[str, M] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    match: Callable[[str], M | None] | None = None  # names the table cannot list (prefixes)
    fallback: M | None = None  # any other name; None: refused as unknown
    batch: int | None = None  # images per upstream call; None: all ``n`` in one call
    batch_option: str | None = None  # config key that overrides ``batch``
    offset_seed: bool = True  # parallel calls must not repeat an image: seed + call index
    encode: Literal["none", "data_uri", "b64"] = "none"  # input images for JSON bodies
    mask: MaskStyle = "transparent"
    policy_statuses: frozenset[int] = frozenset({400, 422})
    refusal_statuses: frozenset[int] = frozenset()  # statuses that always are a refusal
    errors: Callable[[UpstreamHTTPError], UpstreamHTTPError] | None = None
    polling: Polling | None = None
    keys: Keys = API_KEY
    setup: Callable[[ProviderConfig], Mapping[str, Any]] | None = None
    host_family: str | None = None

    def entry(self, model: str) -> M | None:
        """The model table's row for ``model`` (aliases, then ``match``, then ``fallback``)."""
        found = self.models.get(self.aliases.get(model, model))
        if found is None and self.match is not None:
            found = self.match(model)
        return found if found is not None else self.fallback

    def known(self) -> list[str]:
        return [*self.models, *self.aliases]
