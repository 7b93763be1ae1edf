"""Workspaces, managed API keys and the limits they carry: plain values, no I/O.

Every API key belongs to one workspace, and everything the control plane keeps (traces,
identities, threads, prompts, cache entries) belongs to the workspace of the key that made it.
Keys from ``api_keys`` in config are the operator's: admins in workspace ``default``; with no
keys at all (loopback only) every caller is an admin of ``default``.

Limits: a workspace sets defaults for each of its keys and for each identity (``orq.identity``)
that calls through it; a key may override its own. Budgets are USD over a calendar day or
month (UTC) for the whole workspace, per key and per identity::

    ws = Workspace("team-a", key_limits=RateLimits(rpm=60), budget=Budget(50.0, "month"))
    key = ApiKeyRecord(id="key_…", workspace_id="team-a", name="ci", role="member", …)
    effective_key_limits(ws, key)          # the key's own fields over the workspace defaults
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

DEFAULT_WORKSPACE = "default"
KEY_PREFIX = "ig_live_"
KEY_RANDOM_CHARS = 40  # base62: ~238 bits
SHOWN_PREFIX_CHARS = len(KEY_PREFIX) + 6  # "ig_live_ab12cd…" in lists, never more
WORKSPACE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
Role = Literal["admin", "member"]
Period = Literal["day", "month"]
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-minute request and image rates and concurrent in-flight requests; None = no limit."""

    rpm: int | None = None
    images_per_min: int | None = None
    concurrent: int | None = None

    def over(self, defaults: RateLimits) -> RateLimits:
        """These limits where set, ``defaults`` elsewhere."""
        return RateLimits(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(defaults, f.name)
                for f in fields(self)
            }
        )

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.images_per_min is None and self.concurrent is None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "rpm": self.rpm,
            "images_per_min": self.images_per_min,
            "concurrent": self.concurrent,
        }


@dataclass(frozen=True, slots=True)
class Budget:
    """``usd`` per calendar ``period`` (UTC)."""

    usd: float
    period: Period = "month"

    def window(self, now: float) -> tuple[float, float]:
        """(start, end) unix seconds of the period that contains ``now``."""
        t = dt.datetime.fromtimestamp(now, dt.UTC)
        if self.period == "day":
            start = dt.datetime(t.year, t.month, t.day, tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
        else:
            start = dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC)
            days = calendar.monthrange(t.year, t.month)[1]
            end = start + dt.timedelta(days=days)
        return start.timestamp(), end.timestamp()

    def as_dict(self) -> dict[str, Any]:
        return {"usd": self.usd, "period": self.period}

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"50/month"``, ``"5/day"`` or ``"50"`` (a month) → Budget; ValueError otherwise."""
        amount, _, period = text.strip().partition("/")
        period = period.strip() or "month"
        if period not in ("day", "month"):
            raise ValueError("a budget period is 'day' or 'month'")
        usd = float(amount)
        if not usd >= 0 or usd == float("inf"):
            raise ValueError("a budget is a non-negative amount of USD")
        return cls(usd, period)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str | None = None
    key_limits: RateLimits = field(default_factory=RateLimits)  # default for each key
    identity_limits: RateLimits = field(default_factory=RateLimits)  # for each identity
    budget: Budget | None = None  # the whole workspace
    key_budget: Budget | None = None  # default for each key
    identity_budget: Budget | None = None  # for each identity
    allow_unpriced: bool = True  # requests whose price is unknown pass budgets (counted)
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A managed key as stored: its hash, never the key."""

    id: str  # "key_<16 hex>", also the trace's api_key_id
    workspace_id: str
    name: str
    role: Role
    prefix: str  # the first characters, for lists
    hash: str  # hex HMAC-SHA256(pepper, key)
    created_at: float
    revoked_at: float | None = None
    limits: RateLimits = field(default_factory=RateLimits)  # overrides the workspace's
    budget: Budget | None = None  # overrides the workspace's key_budget

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the Authorization header before anything else."""

    workspace_id: str
    role: Role
    key_id: str | None  # None: no keys configured (loopback dev mode)
    key: ApiKeyRecord | None = None  # None for config keys and dev mode

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def acting_in(self, workspace_id: str) -> Principal:
        """The same caller acting in another workspace (admins only; checked by the caller)."""
        return replace(self, workspace_id=workspace_id)


OPERATOR = Principal(DEFAULT_WORKSPACE, "admin", None)


def effective_key_limits(workspace: Workspace | None, key: ApiKeyRecord | None) -> RateLimits:
    defaults = workspace.key_limits if workspace is not None else RateLimits()
    return key.limits.over(defaults) if key is not None else defaults


def effective_key_budget(workspace: Workspace | None, key: ApiKeyRecord | None) -> Budget | None:
    if key is not None and key.budget is not None:
        return key.budget
    return workspace.key_budget if workspace is not None else None


# --- key material ------------------------------------------------------------------------------


def new_key() -> str:
    """A fresh key: ``ig_live_`` and 40 base62 characters from the OS's CSPRNG."""
    return KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_RANDOM_CHARS))


def key_hash(key: str, pepper: bytes) -> str:
    """HMAC-SHA256 of the key under the deployment's pepper: a leaked table alone does not let
    anyone test guesses offline (they would need the pepper too)."""
    return hmac.new(pepper, key.encode("utf-8"), hashlib.sha256).hexdigest()


def managed_key_id(key_hash_hex: str) -> str:
    return "key_" + key_hash_hex[:16]


def mint_key(
    pepper: bytes,
    workspace_id: str,
    name: str,
    role: Role,
    *,
    now: float,
    limits: RateLimits | None = None,
    budget: Budget | None = None,
) -> tuple[str, ApiKeyRecord]:
    """A fresh key and the record to store for it (its hash, never the key)."""
    key = new_key()
    digest = key_hash(key, pepper)
    record = ApiKeyRecord(
        id=managed_key_id(digest),
        workspace_id=workspace_id,
        name=name,
        role=role,
        prefix=key[:SHOWN_PREFIX_CHARS],
        hash=digest,
        created_at=now,
        limits=limits or RateLimits(),
        budget=budget,
    )
    return key, record


def pepper_from(secret: bytes) -> bytes:
    """The pepper derived from the deployment's signing secret (shared by every replica)."""
    return hmac.new(secret, b"imagegate api-key pepper v1", hashlib.sha256).digest()


def valid_workspace_id(value: str) -> bool:
    return WORKSPACE_ID.fullmatch(value) is not None
