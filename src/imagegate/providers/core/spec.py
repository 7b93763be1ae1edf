"""What a provider is, as data: ``ProviderSpec`` plus two functions.

A provider module declares one ``ProviderSpec``, made of a few small parts, each with defaults
so that a declaration names only what is particular to its provider:

- ``Calls(build, parse)``: the two functions the runner (``runner.SpecProvider``) calls for
  every upstream call, plus the optional ``stream`` and ``sign``::

    build(call: Call) -> Wire                          # normalised call → the wire request
    parse(call: Call, answer: Answer) -> ImageResult   # the provider's answer → images

- ``Models(table, ...)``: the model table (``ModelSpec`` rows: what each model can do, plus the
  adapter's own fields), aliases, names matched by rule, the parameters the models take;
- ``Inputs(...)``: how input images and masks travel;
- ``Errors(...)``: how the provider's error answers read;

and, as plain fields, its base URL and auth, images per upstream call, polling, and the config
keys it reads. Everything else (inputs, batching, seeds, fan-out, polling, policy mapping,
errors) is the runner's, written once. docs/adding-a-provider.md walks through an example.
What one call carries (``Call``, ``Wire``, ``Answer``...) is in ``call.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

from ...config import ProviderConfig
from ...errors import UpstreamHTTPError
from ...request import ImageRequest, ImageResult
from ..base import Capabilities
from .masks import MaskStyle
from .params import Params, notes

if TYPE_CHECKING:  # ``call.py`` needs ``M`` from here; these are only annotations here
    from .call import Answer, Call, Job, Send, Sign, Wire


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of a provider. Adapters subclass it to add their own fields (an endpoint
    path, an upstream model name...); the runner reads only ``caps`` and ``batch``."""

    caps: Capabilities
    # images per upstream call for this model (None: the spec's ``batch``); keyword-only so
    # subclasses keep their own positional fields
    batch: int | None = field(default=None, kw_only=True)
    # OpenAI's optional parameters this model takes (``params.py``; None: ``Models.params``)
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


@dataclass(frozen=True, slots=True)
class Calls(Generic[M]):
    """How one upstream call goes over the wire: the two functions every provider writes
    (``build``: the call → the request; ``parse``: the answer → images), and two a few need.
    """

    build: Callable[[Call[M]], Wire]
    parse: Callable[[Call[M], Answer], ImageResult]
    # The wire request that asks for the answer as events (``core/events.py``) for a call, or
    # None when this model or request cannot stream (the runner then calls as usual).
    stream: Callable[[Call[M]], Wire | None] | None = None
    sign: Sign | None = None  # per-call auth (see ``Sign``); JSON bodies are signed as sent


@dataclass(frozen=True, slots=True)
class Models(Generic[M]):
    """The model table: which names a provider serves, and what each row can do and take."""

    table: Mapping[str, M] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    match: Callable[[str], M | None] | None = None  # names the table cannot list (prefixes)
    fallback: M | None = None  # any other name; None: refused as unknown
    # the names ``GET /v1/models`` lists (None: the table's; a ``match`` serves more)
    listed: tuple[str, ...] | None = None
    # OpenAI's optional parameters (``quality``, ``style``, ``user``...) the models take, as is
    # or translated (``params.Sent``); the others are left out (the default: none is sent). A
    # row's own ``params`` wins. What is left out or translated is noted on the trace.
    params: Params = field(default_factory=dict)
    # instead of ``params``, a function saying what the body builder leaves out or renames for
    # a model (its row, the model name, the request): the OpenAI family's own rules
    notes: Callable[[M, str, ImageRequest], list[str]] | None = None

    def entry(self, model: str) -> M | None:
        """The row for ``model`` (aliases, then ``match``, then ``fallback``)."""
        found = self.table.get(self.aliases.get(model, model))
        if found is None and self.match is not None:
            found = self.match(model)
        return found if found is not None else self.fallback

    def known(self) -> list[str]:
        return [*self.table, *self.aliases]

    def names(self) -> list[str]:
        """What ``GET /v1/models`` lists for the provider."""
        return list(self.listed) if self.listed is not None else list(self.table)

    def rules(self, entry: M) -> Params:
        """The optional parameters ``entry`` takes (its own declaration, else the table's)."""
        return entry.params if entry.params is not None else self.params


@dataclass(frozen=True, slots=True)
class Inputs(Generic[M]):
    """How input images and the mask travel, made once per request and reused by retries."""

    encode: Literal["none", "data_uri", "b64"] = "none"  # input images for JSON bodies
    mask: MaskStyle = "transparent"  # the mask's convention: white/black = edit, or none
    # inputs made after the runner's own (Replicate's file uploads): may set
    # ``call.images``/``call.mask_text`` and send requests with ``send``
    prepare: Callable[[Call[M], Send], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Errors:
    """How the provider's error answers read: which statuses carry a policy refusal, and its
    own conventions where the common mapping (``core/http.py``) would mislead."""

    # statuses whose policy-worded answer is a 400 ``content_policy_violation``
    policy_statuses: frozenset[int] = frozenset({400, 422})
    refusal_statuses: frozenset[int] = frozenset()  # statuses that always are a refusal
    # the failure to raise instead of the common one (xAI's bad key is a 400 there)
    remap: Callable[[UpstreamHTTPError], UpstreamHTTPError] | None = None
    # a response header naming the provider's error type (Bedrock's ``x-amzn-ErrorType``): its
    # value up to the first ``:`` is put in front of the error's message, for ``remap``
    type_header: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderSpec(Generic[M]):
    """One provider type, declared. Only ``type`` and ``calls`` are required; each part has
    defaults, so a declaration names only what is particular to its provider."""

    type: str
    calls: Calls[M]
    base_url: str = ""  # "" : the entry must give one
    # the base URL when it depends on the entry (a region), used when the entry gives none
    default_url: Callable[[ProviderConfig], str] | None = None
    auth: Auth | AuthHook = BEARER
    accept: str = "application/json"
    models: Models[M] = field(default_factory=Models)
    inputs: Inputs[M] = field(default_factory=Inputs)
    errors: Errors = Errors()
    batch: int | None = None  # images per upstream call; None: all ``n`` in one call
    batch_option: str | None = None  # config key that overrides ``batch``
    offset_seed: bool = True  # parallel calls must not repeat an image: seed + call index
    polling: Polling | None = None
    keys: Keys = API_KEY
    setup: Callable[[ProviderConfig], Mapping[str, Any]] | None = None
    host_family: str | None = None
    # more base URLs of an entry, from its settings (fal's queue host): absolute URLs on them
    # count as the provider's own
    origins: Callable[[Mapping[str, Any]], Sequence[str]] | None = None

    def param_notes(self, model: str, request: ImageRequest) -> list[str]:
        """What ``model`` is not sent as the request gave it (for the trace)."""
        models = self.models
        entry = models.entry(model)
        if entry is None:
            return []
        if models.notes is not None:
            return models.notes(entry, model, request)
        streams = self.calls.stream is not None
        return notes(models.rules(entry), model, request, streams=streams)
