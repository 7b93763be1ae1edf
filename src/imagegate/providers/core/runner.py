"""``SpecProvider``: the one runner behind every provider declared as a ``ProviderSpec``.

Per request it resolves the model's table row (``Capabilities`` for the routing plan),
prepares the inputs once (images encoded for JSON bodies, the mask converted to the provider's
convention; conversions are remembered on the upload, so retries reuse them), splits ``n``
into batches of ``spec.batch`` run as parallel calls with the seed offset per call, and for
each call sends what ``spec.calls.build`` made, follows a job when the spec polls, and hands
the answer to ``spec.calls.parse``. Error answers become ``UpstreamFailure`` values in
``http.py`` (policy refusals → 400 ``content_policy_violation``, ``policy.py``), read the
provider's way (``spec.errors``) in ``SpecProvider.failure``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Generic

import aiohttp
import orjson
from yarl import URL

from ...config import ProviderConfig
from ...errors import UpstreamConnectionError, UpstreamHTTPError
from ...net import BodyTooLarge, read_capped
from ...request import ImageRequest, ImageResult
from ..base import Capabilities
from . import inputs, masks
from .answers import merge
from .call import Answer, Call, Outgoing, Wire
from .events import EventStream
from .failures import invalid_input, not_configured
from .fanout import gather
from .form import multipart
from .http import Headers, HTTPProvider, Outbound
from .polling import Jobs, interval_option
from .sizes import batches
from .spec import Auth, M, ProviderSpec


class SpecProvider(HTTPProvider, Generic[M]):
    """One configured entry of a provider type declared by ``spec``."""

    def __init__(self, spec: ProviderSpec[M], name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.spec = spec
        default = spec.default_url(config) if spec.default_url else spec.base_url
        self.base_url = (config.base_url or default).rstrip("/")
        self.api_host_family = spec.host_family
        self.policy_statuses = spec.errors.policy_statuses
        self.refusal_statuses = spec.errors.refusal_statuses
        self.settings: Mapping[str, Any] = spec.setup(config) if spec.setup else {}
        more = spec.origins(self.settings) if spec.origins else ()
        self.origins = tuple(url.rstrip("/") for url in (self.base_url, *more) if url)
        self.batch = spec.batch
        if spec.batch_option is not None:
            self.batch = _per_call(config.option(spec.batch_option), spec.batch)
        self.headers, self.auth_params = _auth(spec, config)
        # the headers of a call, by body (JSON or not) and answer (whole or as events): made
        # once, so that a call without headers of its own copies none
        events = {**self.headers, "Accept": "text/event-stream"}
        self._headers = (self.headers, {"Content-Type": "application/json", **self.headers})
        self._event_headers = (events, {"Content-Type": "application/json", **events})
        self.jobs: Jobs | None = None
        if spec.polling is not None:
            interval = spec.polling.interval_s
            self.jobs = Jobs(interval_option(config.option("poll_interval_s"), interval))

    def origin_urls(self) -> tuple[str, ...]:
        return self.origins

    def capabilities(self, model: str) -> Capabilities:
        entry = self.spec.models.entry(model)
        if entry is None:
            return Capabilities.unknown_model(self.name, model, self.spec.models.known())
        return entry.caps

    def param_notes(self, model: str, request: ImageRequest) -> list[str]:
        """What ``model`` is not sent as the request gave it (``ProviderSpec.param_notes``)."""
        return self.spec.param_notes(model, request)

    async def close(self) -> None:
        if self.jobs is not None:
            await self.jobs.close()
        await super().close()

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        spec = self.spec
        entry = spec.models.entry(model)
        if entry is None or entry.caps.refused is not None:
            raise invalid_input(self.capabilities(model).refused or "unknown model", "model")
        if not self.base_url:
            raise not_configured(self.name, "base_url is missing")
        if request.operation != "generations" and not request.images:
            raise invalid_input("an input image is required", "image")
        first = Call(self.name, model, entry, request, self.settings, request.n_images)
        await self._prepare(first)
        if spec.inputs.prepare is not None:
            await spec.inputs.prepare(first, self.exchange)
        per_call = entry.batch or self.batch  # the model's own limit, else the entry's
        counts = batches(request.n_images, per_call) if per_call else [request.n_images]
        if len(counts) == 1:
            first.seed = request.seed
            return await self._one(first)
        seeds: list[int | None] = [request.seed] * len(counts)
        if request.seed is not None and spec.offset_seed:  # no two calls draw the same image
            seeds = [request.seed + i for i in range(len(counts))]

        async def one(i: int) -> ImageResult:
            call = dataclasses.replace(first, count=counts[i], index=i, seed=seeds[i])
            return await self._one(call)

        return merge(await gather(len(counts), one))

    async def open_stream(
        self, model: str, request: ImageRequest
    ) -> EventStream | ImageResult | None:
        """The answer as events when the spec streams this model and request in one call
        (``Calls.stream``); None otherwise (``call`` then runs as usual). An upstream
        that ignored ``stream`` and answered whole is parsed like any answer."""
        spec = self.spec
        entry = spec.models.entry(model)
        if spec.calls.stream is None or entry is None or entry.caps.refused is not None:
            return None
        per_call = entry.batch or self.batch
        if not self.base_url or (per_call and request.n_images > per_call):
            return None
        if request.operation != "generations" and not request.images:
            return None
        call = Call(self.name, model, entry, request, self.settings, request.n_images)
        call.seed = request.seed
        await self._prepare(call)
        wire = spec.calls.stream(call)
        if wire is None:
            return None
        response = await self._open(wire)
        if response.content_type != "text/event-stream":  # answered whole: read it as usual
            try:
                body = await read_capped(response, self.max_response_bytes)
            except (BodyTooLarge, aiohttp.ClientError, OSError) as exc:
                raise UpstreamConnectionError(f"{self.name}: broken response: {exc}") from None
            finally:
                response.close()
            return spec.calls.parse(
                call, Answer(self.name, response.status, response.headers, body)
            )
        return EventStream(self.name, response, max_event_bytes=self.max_response_bytes)

    async def _open(self, wire: Wire) -> aiohttp.ClientResponse:
        """``exchange`` for a streamed answer: the response open, its body unread."""
        with self._outbound(wire, self._event_headers) as out:
            if self.spec.calls.sign is not None:
                await self._sign(out)
            return await self.open(out)

    async def _prepare(self, call: Call[M]) -> None:
        """Inputs made once per request and shared by every call and retry."""
        request = call.request
        if request.operation == "generations":
            return
        if self.spec.inputs.encode == "data_uri":
            call.images = [await inputs.data_uri(image) for image in request.images]
        elif self.spec.inputs.encode == "b64":
            call.images = [await inputs.b64(image) for image in request.images]
        style = self.spec.inputs.mask
        if request.mask is None or style == "none" or not call.entry.caps.mask:
            return
        if style == "transparent":
            call.mask = request.mask
        else:
            png = await masks.provider_mask(request.mask, style)
            call.mask = inputs.png_upload(png)
        if self.spec.inputs.encode == "data_uri":
            call.mask_text = await inputs.data_uri(call.mask)
        elif self.spec.inputs.encode == "b64":
            call.mask_text = await inputs.b64(call.mask)

    async def _one(self, call: Call[M]) -> ImageResult:
        calls = self.spec.calls
        answer = await self.exchange(calls.build(call))
        if self.spec.polling is not None:
            answer = await self._follow(call, answer)
        return calls.parse(call, answer)

    def failure(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        """The common failure (``HTTPProvider.failure``), read the provider's way
        (``spec.errors``): the one place an error answer is translated, for every path."""
        exc = super().failure(status, body, headers)
        errors = self.spec.errors
        kind = headers.get(errors.type_header or "", "")
        if kind:  # the provider's own error type, for ``errors.remap`` and the caller
            exc.message = f"{kind.split(':')[0][:100]}: {exc.message}"
        return exc if errors.remap is None else errors.remap(exc)

    async def exchange(self, wire: Wire) -> Answer:
        """Send ``wire`` and return the answer (an error answer raises, from ``failure``)."""
        with self._outbound(wire, self._headers) as out:
            if self.spec.calls.sign is not None:
                await self._sign(out)
            status, body, got = await self.send(out)
        return Answer(self.name, status, got, body)

    def _outbound(self, wire: Wire, headers: tuple[Headers, Headers]) -> Outbound:
        """``wire`` ready to send, by ``exchange`` and ``_open`` alike: the URL (an absolute
        one only on the provider's own hosts), the headers (``headers``: without and with a
        JSON body), the query with the key when it travels there, and the body."""
        path = wire.path
        if path.startswith(("http://", "https://")):
            url = self.own_url(path, wire.what)
        else:
            url = self.base_url + path
        target = URL(url, encoded=True) if wire.encoded else url
        params = wire.params
        if self.auth_params:
            params = {**self.auth_params, **(params or {})}
        if wire.fields is not None:  # last: the files it opens are closed by ``Outbound``
            data, closers = multipart(wire.fields, wire.files)
            sent, signed = headers[0], None
        else:  # serialised once here, so that a signature covers the very bytes sent
            data, closers = None if wire.json is None else orjson.dumps(wire.json), []
            sent, signed = headers[data is not None], data or b""
        if wire.headers is not None:
            sent = {**sent, **wire.headers}
        return Outbound(wire.method, url, target, sent, params, data, signed, closers)

    async def _sign(self, out: Outbound) -> None:
        """Adds the spec's per-call auth (``Calls.sign``) to ``out``'s headers."""
        sign = self.spec.calls.sign
        assert sign is not None
        signature = await sign(self, Outgoing(out.method, out.url, out.headers, out.signed))
        out.headers = {**out.headers, **signature}

    async def _follow(self, call: Call[M], answer: Answer) -> Answer:
        polling = self.spec.polling
        assert polling is not None and self.jobs is not None
        job = polling.submitted(call, answer)
        if job is None:
            return answer
        for wire in (job.poll, job.cancel, job.result):  # off-host URLs: before any poll
            if wire is not None and wire.path.startswith(("http://", "https://")):
                self.own_url(wire.path, wire.what)
        cancel = job.cancel

        async def fetch() -> Answer:
            answer = await self.exchange(job.poll)
            if self.spec.accept == "application/json":
                answer.doc()  # a broken poll answer is polled again, like a failed poll
            return answer

        async def fire() -> Answer:
            assert cancel is not None
            return await self.exchange(cancel)

        answer = await self.jobs.wait(
            fetch, polling.finished, cancel=fire if cancel is not None else None
        )
        if polling.check is not None:
            polling.check(call, answer)
        return answer if job.result is None else await self.exchange(job.result)


def _per_call(value: Any, default: int | None) -> int | None:
    """A configured batch size: a whole number 1–10, else the spec's default."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(10, number) if number >= 1 else default


def _auth(spec: ProviderSpec[Any], config: ProviderConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters every call of the entry carries (made once)."""
    headers = {"Accept": spec.accept}
    params: dict[str, str] = {}
    auth = spec.auth
    if not isinstance(auth, Auth):
        headers.update(auth(config))
    elif config.api_key and auth.style == "bearer":
        headers[auth.name] = f"{auth.scheme} {config.api_key}"
    elif config.api_key and auth.style == "header":
        headers[auth.name] = config.api_key
    elif config.api_key and auth.style == "query":
        params[auth.name] = config.api_key
    return headers, params
