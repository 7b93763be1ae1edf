"""The control step of the pipeline: who asked (identity, thread), which prompt, what it cost.

It runs first in ``Gateway._run`` and keeps the hot path lean: identity and thread upserts are
queued to the batching writer (no database round trip per request), and prompt versions come
from a small in-process cache with a short TTL, so only a cache miss reads the database.

    control = ControlPlane(config, store=store, writer=writer)   # the gateway's, opened by it
    await control.apply(request, trace)          # may change prompt, model and parameters
    control.price(trace, request, result)        # trace.cost_usd, None when unknown
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from .config import Config
from .errors import InvalidRequest
from .limits import check_request, expanded_length
from .pricing import PriceBook
from .request import PROMPT_PARAMS, ImageRequest, ImageResult
from .routing.names import Names
from .store import (
    IdentityUpsert,
    PromptVersion,
    Store,
    StoreUnavailable,
    ThreadUpsert,
)
from .telemetry.trace import TraceRecord
from .telemetry.writer import BatchingWriter

# Request parameters a prompt version may default (request values win): the table's column.
PROMPT_DEFAULTS: frozenset[str] = frozenset(PROMPT_PARAMS)
INPUT = re.compile(r"\{\{\s*input\s*\}\}")
NOTE_PROMPT_NOT_FOUND = "prompt_not_found"
NOTE_PROMPT_UNAVAILABLE = "prompt_store_unavailable"


def render_template(template: str, text: str | None, max_chars: int | None = None) -> str:
    """``{{input}}`` (spaces allowed inside the braces) stands for the caller's prompt.

    With ``max_chars``, the length of the result is computed first and a result over it is a
    400 before anything is built (a template of thousands of ``{{input}}`` times a long
    prompt would otherwise expand to gigabytes).
    """
    if max_chars is not None:
        matches = list(INPUT.finditer(template))
        size = expanded_length(template, matches, text)
        if size > max_chars:
            raise InvalidRequest(
                f"prompt: the stored prompt's template expands to {size} characters with this"
                f" prompt, at most {max_chars}",
                param="orq.prompt",
            )
    return INPUT.sub(lambda _: text or "", template)


class PromptCache:
    """Prompt versions by (workspace, id, version) for ``ttl_s``; misses (None) are cached too.

    When the store is down, a stale entry is served rather than failing the lookup.
    """

    def __init__(
        self, store: Store, *, ttl_s: float = 5.0, timeout_s: float = 1.0, size: int = 1024
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.size = size
        self._entries: dict[tuple[str, str, int | None], tuple[float, PromptVersion | None]] = {}

    async def get(
        self, workspace: str, prompt_id: str, version: int | None
    ) -> PromptVersion | None:
        key = (workspace, prompt_id, version)
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            found = await asyncio.wait_for(
                self.store.get_prompt_version(workspace, prompt_id, version),
                timeout=self.timeout_s,
            )
        except (StoreUnavailable, TimeoutError):
            if hit is not None:
                return hit[1]
            raise StoreUnavailable("prompt store unavailable") from None
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (now + self.ttl_s, found)
        return found

    def invalidate(self, workspace: str, prompt_id: str) -> None:
        for key in [k for k in self._entries if k[0] == workspace and k[1] == prompt_id]:
            del self._entries[key]


class ControlPlane:
    """Prompt cache and prices over the gateway's store and writer (the gateway builds,
    starts and closes both; tests may inject their own)."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store,
        writer: BatchingWriter,
        prices: PriceBook | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.prompts = PromptCache(self.store)
        self.prices = prices or PriceBook.load()
        self.max_prompt_chars = config.limits.max_expanded_prompt_chars
        self.limits = config.limits
        self.names = Names.from_config(config)  # aliases, default_provider, defaults.model
        self._provider_types = {
            name: entry.type for name, entry in config.providers.items() if entry.type
        }

    async def sync(self, timeout_s: float = 1.0) -> None:
        """Let queued writes land before a read (read-your-writes within one process)."""
        await self.writer.flush(timeout_s)

    # --- the pipeline step ---------------------------------------------------------------
    async def apply(self, request: ImageRequest, trace: TraceRecord) -> None:
        """Queue identity/thread upserts, then apply the prompt version, if any; all of it in
        the trace's workspace (set by the caller before this step)."""
        opts = request.options
        now = time.time()
        ws = trace.workspace_id
        identity = opts.identity
        if identity is not None:
            self.writer.submit_op(
                IdentityUpsert(
                    id=identity.id,
                    seen_at=now,
                    display_name=identity.display_name,
                    email=str(identity.email) if identity.email is not None else None,
                    logo_url=identity.logo_url,
                    metadata=list(identity.metadata) if identity.metadata is not None else None,
                    tags=list(identity.tags) if identity.tags is not None else None,
                    workspace_id=ws,
                )
            )
        if opts.thread is not None:
            tags = list(opts.thread.tags or [])
            self.writer.submit_op(ThreadUpsert(opts.thread.id, now, tags, workspace_id=ws))
        if opts.prompt is not None:
            await self._apply_prompt(request, trace)
        # model names → provider/model, after the prompt (it may name the model)
        if self.names.resolve(request, trace.notes):
            check_request(request, self.limits)  # an alias's chain within the bounds too
        trace.n, trace.size, trace.quality = request.n_images, request.size, request.quality

    async def _apply_prompt(self, request: ImageRequest, trace: TraceRecord) -> None:
        ref = request.options.prompt
        assert ref is not None
        wanted = None if ref.version == "latest" else int(ref.version)
        try:
            version = await self.prompts.get(trace.workspace_id, ref.id, wanted)
        except StoreUnavailable:
            trace.notes.append(NOTE_PROMPT_UNAVAILABLE)
            return
        if version is None:
            trace.notes.append(NOTE_PROMPT_NOT_FOUND)
            return
        apply_version(request, version, self.max_prompt_chars)
        trace.prompt_id, trace.prompt_version = version.prompt_id, version.version
        trace.requested_model = request.model
        trace.n, trace.size, trace.quality = request.n_images, request.size, request.quality

    # --- cost ----------------------------------------------------------------------------
    def price(self, trace: TraceRecord, request: ImageRequest, result: ImageResult) -> None:
        """Set ``trace.cost_usd``: 0 for a cache hit, None when the price is unknown."""
        if trace.cache == "hit":
            trace.cost_usd = 0.0
            return
        trace.cost_usd = self.cost(
            trace.served_model or request.model or "",
            n=len(result.images) or request.n_images,
            size=result.size or request.size,
            quality=result.quality or request.quality,
            usage=result.usage,
        )

    def cost(
        self,
        model: str,
        *,
        n: int,
        size: str | None,
        quality: str | None,
        usage: dict[str, Any] | None = None,
    ) -> float | None:
        """USD for ``n`` images of ``model`` from the price book; None when unknown."""
        provider = model.partition("/")[0]
        return self.prices.cost(
            model,
            n=n,
            size=size,
            quality=quality,
            usage=usage,
            provider_type=self._provider_types.get(provider),
        )


def apply_version(
    request: ImageRequest, version: PromptVersion, max_chars: int | None = None
) -> None:
    """Template → prompt, model → model, defaults → parameters the caller left unset."""
    if version.template is not None:
        request.prompt = render_template(version.template, request.prompt, max_chars)
    if version.model:
        request.model = version.model
    for name, value in version.parameters.items():
        if name in PROMPT_DEFAULTS and getattr(request, name) is None:
            setattr(request, name, value)
