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

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

import orjson

from ...config import ProviderConfig
from ...errors import UpstreamConnectionError, UpstreamHTTPError
from ...request import ImageRequest, ImageResult, UploadedFile
from ..base import Capabilities
from . import jsonsplice
from .masks import MaskStyle
from .params import Params, notes

if TYPE_CHECKING:
    from .runner import SpecProvider


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of a provider. Adapters subclass it to add their own fields (an endpoint
    path, an upstream model name...); the runner reads only ``caps`` and ``batch``."""

    caps: Capabilities
    # images per upstream call for this model (None: the spec's ``batch``); keyword-only so
    # subclasses keep their own positional fields
    batch: int | None = field(default=None, kw_only=True)
    # OpenAI's optional parameters this model takes (``params.py``; None: the spec's ``params``)
    params: Params | None = field(default=None, kw_only=True, compare=False)


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
    # a rule the groups cannot say, checked at config load: the entry → why it cannot work
    # (one line naming the keys), or None (Vertex: a static ``access_token`` names no project)
    check: Callable[[ProviderConfig], str | None] | None = None


API_KEY = Keys(credentials=("api_key",))  # the default: an ``api_key`` and nothing else
# The runner's ``exchange``, handed to ``ProviderSpec.prepare``: one request, auth and error
# translation included.
Send = Callable[[Wire], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request about to be sent, as ``ProviderSpec.sign`` sees it."""

    method: str
    url: str  # without the query ``params``
    headers: Mapping[str, str]  # the headers so far (the entry's ``headers`` are added last)
    body: bytes | None  # the exact bytes sent (b"" for none); None: a streamed multipart form


# Per-call auth, awaited by the runner just before each request is sent: (the entry, the
# request) → headers to add (Vertex's OAuth token, Bedrock's SigV4 signature).
Sign = Callable[["SpecProvider[Any]", Outgoing], Awaitable[Mapping[str, str]]]


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
    # OpenAI's optional parameters (``quality``, ``style``, ``user``...) its models take, as is
    # or translated (``params.Sent``); the others are left out. A row's own ``params`` wins.
    # What is left out or translated is noted on the trace of the model that served.
    params: Params = field(default_factory=dict)
    # instead of ``params``, a function saying what the body builder leaves out or renames for
    # a model (its row, the model name, the request): the OpenAI family's own rules
    notes: Callable[[M, str, ImageRequest], list[str]] | None = None
    # the names ``GET /v1/models`` lists (None: the model table's; a ``match`` serves more)
    listed: tuple[str, ...] | None = None
    # The wire request that asks for the answer as events (``core/events.py``) for a call, or
    # None when this model or request cannot stream (the runner then calls as usual).
    stream: Callable[[Call[M]], Wire | None] | None = None
    # more base URLs of an entry, from its settings (fal's queue host): absolute URLs on them
    # count as the provider's own
    origins: Callable[[Mapping[str, Any]], Sequence[str]] | None = None
    # inputs made once per request after the runner's own (Replicate's file uploads): may set
    # ``call.images``/``call.mask_text`` and send requests with ``send``
    prepare: Callable[[Call[M], Send], Awaitable[None]] | None = None
    sign: Sign | None = None  # per-call auth (see ``Sign``); JSON bodies are signed as sent
    # the base URL when it depends on the entry (a region), used when the entry gives none
    default_url: Callable[[ProviderConfig], str] | None = None
    # a response header naming the provider's error type (Bedrock's ``x-amzn-ErrorType``): its
    # value up to the first ``:`` is put in front of the error's message, for ``errors``
    error_type_header: str | None = None

    def entry(self, model: str) -> M | None:
        """The model table's row for ``model`` (aliases, then ``match``, then ``fallback``)."""
        found = self.models.get(self.aliases.get(model, model))
        if found is None and self.match is not None:
            found = self.match(model)
        return found if found is not None else self.fallback

    def known(self) -> list[str]:
        return [*self.models, *self.aliases]

    def rules(self, entry: M) -> Params:
        """The optional parameters ``entry`` takes (its own declaration, else the spec's)."""
        return entry.params if entry.params is not None else self.params

    def param_notes(self, model: str, request: ImageRequest) -> list[str]:
        """What ``model`` is not sent as the request gave it (for the trace)."""
        entry = self.entry(model)
        if entry is None:
            return []
        if self.notes is not None:
            return self.notes(entry, model, request)
        return notes(self.rules(entry), model, request, streams=self.stream is not None)
