"""The admission step of the pipeline: a caller's workspace limits applied to one request.

Rate limits run first (before the control plane, the cache or the plan: a refused request
costs nothing and is never sent upstream); budgets run once the plan is known, right before
the first upstream attempt, because the worst-case price depends on the models the request
may be served by. Cache hits and coalesced followers reserve nothing: they cost nothing.

    tenancy = Tenancy(config, control)
    ticket = await tenancy.admit(principal, request)            # 429 rate_limit_exceeded
    reservation = await tenancy.reserve(principal, request, models)  # 429 budget_exceeded
    await reservation.settle(trace.cost_usd)                    # the real cost, once known
    await ticket.release()

Workspace records are read through a small cache (``WORKSPACE_TTL_S``): a change of a
workspace's limits applies within that time; keys are never cached (see ``api/auth.py``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from .admission import (
    Admission,
    BudgetCheck,
    BudgetExceeded,
    RateCheck,
    RateLimitExceeded,
    Reservation,
    Ticket,
)
from .config import Config
from .control import ControlPlane
from .errors import GatewayError, RateLimited
from .request import ImageRequest
from .store import StoreUnavailable
from .workspaces import (
    Budget,
    Principal,
    Workspace,
    effective_key_budget,
    effective_key_limits,
)

WORKSPACE_TTL_S = 5.0


class BudgetRefused(RateLimited):
    code = "budget_exceeded"


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class Tenancy:
    """Workspace lookups (cached briefly) and the admission backend, for the gateway."""

    def __init__(self, config: Config, control: ControlPlane) -> None:
        self.store = control.store
        self.control = control  # its price book prices the worst case
        self.admission = Admission.from_config(config)
        self.deadline_s = config.routing.deadline_s
        self._workspaces: dict[str, tuple[float, Workspace | None]] = {}
        self._lookups: dict[str, asyncio.Task[Workspace | None]] = {}

    async def workspace(self, workspace_id: str) -> Workspace | None:
        """The workspace record, at most about ``WORKSPACE_TTL_S`` old; None when unknown or the
        store is down (then no limits apply: the store's outage must not stop traffic).

        Only the first lookup of a workspace waits, and concurrent first lookups share one
        query; after that an expired entry is served while one background query refreshes it
        (a store busy with a batch of trace writes must not hold every request in flight).
        """
        hit = self._workspaces.get(workspace_id)
        if hit is not None:
            if hit[0] <= time.monotonic() and workspace_id not in self._lookups:
                self._lookup(workspace_id)
            return hit[1]
        task = self._lookups.get(workspace_id) or self._lookup(workspace_id)
        try:
            return await asyncio.shield(task)
        except StoreUnavailable:
            return None

    def _lookup(self, workspace_id: str) -> asyncio.Task[Workspace | None]:
        async def fetch() -> Workspace | None:
            try:
                found = await self.store.get_workspace(workspace_id)
            except BaseException:
                if self._lookups.get(workspace_id) is task:
                    del self._lookups[workspace_id]
                raise
            if self._lookups.get(workspace_id) is task:  # not forgotten meanwhile
                del self._lookups[workspace_id]
                if len(self._workspaces) > 4096:
                    self._workspaces.clear()
                self._workspaces[workspace_id] = (time.monotonic() + WORKSPACE_TTL_S, found)
            return found

        task = asyncio.ensure_future(fetch())
        task.add_done_callback(_quiet)
        self._lookups[workspace_id] = task
        return task

    def forget(self, workspace_id: str) -> None:
        """Drop a cached workspace (this process changed it); a lookup already running may
        have read the old record, so it no longer counts."""
        self._workspaces.pop(workspace_id, None)
        self._lookups.pop(workspace_id, None)

    # --- rate limits ---------------------------------------------------------------------
    async def admit(
        self, principal: Principal, request: ImageRequest, identity: str | None
    ) -> Ticket | None:
        """Consume the request's rate limits (its key's and its identity's), or raise a 429
        naming which one."""
        ws = await self.workspace(principal.workspace_id)
        if ws is None:
            return None
        checks: list[RateCheck] = []
        key_limits = effective_key_limits(ws, principal.key)
        if not key_limits.empty:
            who = principal.key_id or "operator"
            checks.append(RateCheck("key", f"{ws.id}:key:{who}", key_limits))
        if identity is not None and not ws.identity_limits.empty:
            checks.append(RateCheck("identity", f"{ws.id}:identity:{identity}", ws.identity_limits))
        if not checks:
            return None
        try:
            return await self.admission.admit(checks, request.n_images, self.deadline_s)
        except RateLimitExceeded as exc:
            headers = {**exc.headers, "Retry-After": retry_after(exc.retry_after_s)}
            raise RateLimited(
                f"rate limit exceeded: {exc.kind} {exc.which} per "
                f"{'request' if exc.which == 'concurrent' else 'minute'}; retry in "
                f"{retry_after(exc.retry_after_s)} s",
                headers=headers,
            ) from None

    # --- budgets -------------------------------------------------------------------------
    def worst_cost(self, request: ImageRequest, models: list[str]) -> float | None:
        """The most the request can cost over the models it may be served by; None when any
        of them has no price."""
        worst = 0.0
        for model in models:
            cost = self.control.cost(
                model, n=request.n_images, size=request.size, quality=request.quality
            )
            if cost is None:
                return None
            worst = max(worst, cost)
        return worst

    async def reserve(
        self, principal: Principal, request: ImageRequest, models: list[str], identity: str | None
    ) -> Reservation | None:
        """Reserve the worst-case cost against every budget that applies, or raise a 429."""
        ws = await self.workspace(principal.workspace_id)
        if ws is None:
            return None
        store, wid = self.store, ws.id
        checks: list[BudgetCheck] = []

        def add(name: str, key: str, budget: Budget | None, seed: Seed) -> None:
            if budget is not None:
                checks.append(BudgetCheck(name, key, budget, seed))

        add(
            f"workspace {wid} {period(ws.budget)} budget",
            f"{wid}:ws",
            ws.budget,
            lambda since: store.spend(wid, since),
        )
        key_budget = effective_key_budget(ws, principal.key)
        if principal.key_id is not None:
            kid = principal.key_id
            add(
                f"key {kid} {period(key_budget)} budget",
                f"{wid}:key:{kid}",
                key_budget,
                lambda since: store.spend(wid, since, key_id=kid),
            )
        if identity is not None:
            add(
                f"identity {identity} {period(ws.identity_budget)} budget",
                f"{wid}:identity:{identity}",
                ws.identity_budget,
                lambda since: store.spend(wid, since, identity_id=identity),
            )
        if not checks:
            return None
        try:
            return await self.admission.reserve(
                checks, self.worst_cost(request, models), ws.allow_unpriced
            )
        except BudgetExceeded as exc:
            raise BudgetRefused(
                f"budget exceeded: {exc.name}",
                headers={"Retry-After": retry_after(exc.retry_after_s)},
            ) from None

    async def close(self) -> None:
        await self.admission.close()


Seed = Callable[[float], Awaitable[float]]


def _quiet(task: asyncio.Task[Workspace | None]) -> None:
    """A background refresh that failed keeps the stale entry; mark its error retrieved."""
    if not task.cancelled():
        task.exception()


def period(budget: Budget | None) -> str:
    return {"day": "daily", "month": "monthly"}.get(budget.period, "") if budget else ""


def with_headers(exc: GatewayError, ticket: Ticket | None) -> GatewayError:
    """An error answer carries the rate-limit headers too (OpenAI sends them on every one)."""
    if ticket is not None and ticket.headers:
        exc.headers = {**ticket.headers, **exc.headers}
    return exc
