"""Defensive parsing of query and path parameters, shared by every handler.

Why one module: ``str.isdigit`` is true for ``"²"`` and ``"١"`` yet ``int()`` refuses them,
``int()`` of a few thousand digits raises, ``float()`` takes ``"nan"``, ``"1e999"`` and
Arabic-Indic digits, and a NUL byte makes PostgreSQL reject the whole query — each of those
was a 500 with a traceback. Here every value is checked against ASCII-only rules with bounded
lengths and ranges before anything converts it. A bad query parameter is a 400
``invalid_request_body`` naming it; a path parameter that cannot name anything stored is a
404 (the object cannot exist), so callers never learn more than "not found".
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import overload

from ..errors import InvalidRequest, NotFound

MAX_ID_CHARS = 256  # ids in paths and cursors; also the cap on identity/thread/prompt ids
MAX_TEXT_CHARS = 256  # filter values (name, model, ...)
MAX_INT_DIGITS = 12  # far below int()'s 4300-digit limit, above any bound used here
MAX_TIME_CHARS = 40
MIN_TIME_S = -62_135_596_800.0  # 0001-01-01T00:00:00Z
MAX_TIME_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII)
_ISO_CHARS = re.compile(r"[0-9A-Za-z:.+\- ]+", re.ASCII)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)


def ascii_int(text: str, max_digits: int = MAX_INT_DIGITS) -> int | None:
    """``text`` as an int when it is 1..max_digits ASCII digits, else None (never raises)."""
    if not 0 < len(text) <= max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def is_lower_hex(text: str, length: int) -> bool:
    """Exactly ``length`` lowercase hex digits (blob keys; ``re.match`` + ``$`` lets "\\n" in)."""
    return len(text) == length and _HEX.fullmatch(text) is not None


def clean_text(text: str, max_chars: int) -> bool:
    """Bounded and free of control characters and surrogates (PostgreSQL refuses NUL)."""
    return len(text) <= max_chars and not any(
        unicodedata.category(ch) in ("Cc", "Cs") for ch in text
    )


# --- query parameters: 400 naming the parameter ---------------------------------------------


def query_text(params: Mapping[str, str], name: str, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """A free-text filter or cursor; empty means absent."""
    raw = params.get(name)
    if not raw:
        return None
    if not clean_text(raw, max_chars):
        raise InvalidRequest(
            f"{name}: at most {max_chars} characters, no control characters", param=name
        )
    return raw


@overload
def query_int(params: Mapping[str, str], name: str, *, lo: int, hi: int, default: int) -> int: ...


@overload
def query_int(
    params: Mapping[str, str], name: str, *, lo: int, hi: int, default: None = None
) -> int | None: ...


def query_int(
    params: Mapping[str, str], name: str, *, lo: int, hi: int, default: int | None = None
) -> int | None:
    """A whole number lo..hi written in ASCII digits; absent gives ``default``, empty is a 400."""
    raw = params.get(name)
    if raw is None:
        return default
    value = ascii_int(raw)
    if value is None or not lo <= value <= hi:
        raise InvalidRequest(f"{name}: must be a whole number {lo}–{hi}", param=name)
    return value


def query_choice(
    params: Mapping[str, str], name: str, choices: Collection[str], *, fold_case: bool = False
) -> str | None:
    """One of ``choices`` (compared lower-cased with ``fold_case``); empty means absent."""
    raw = params.get(name)
    if not raw:
        return None
    value = raw.lower() if fold_case and raw.isascii() else raw
    if value not in choices:
        listed = ", ".join(repr(c) for c in sorted(choices))
        raise InvalidRequest(f"{name}: one of {listed}", param=name)
    return value


def parse_time(text: str) -> float | None:
    """ISO 8601 (naive = UTC) or unix seconds → unix seconds; None when not a bounded time."""
    if len(text) > MAX_TIME_CHARS or not text.isascii():
        return None
    if _UNIX_SECONDS.fullmatch(text):
        value = float(text)
    else:
        if not _ISO_CHARS.fullmatch(text):
            return None
        iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            when = datetime.fromisoformat(iso)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            value = when.timestamp()
        except (ValueError, OverflowError):
            return None
    if not math.isfinite(value) or not MIN_TIME_S <= value <= MAX_TIME_S:
        return None
    return value


def query_time(params: Mapping[str, str], name: str) -> float | None:
    """A time filter (ISO 8601 or unix seconds, years 1–9999); empty means absent."""
    raw = params.get(name)
    if not raw:
        return None
    value = parse_time(raw)
    if value is None:
        raise InvalidRequest(f"{name}: ISO 8601 time or unix seconds", param=name)
    return value


# --- path parameters: a value that cannot name a stored object is a 404 -----------------------


def path_id(path_params: Mapping[str, str], name: str, *, what: str, param: str = "id") -> str:
    """An object id from the path: 1..MAX_ID_CHARS characters, no control characters."""
    raw = path_params[name]
    if not raw or not clean_text(raw, MAX_ID_CHARS):
        raise NotFound(f"{what} not found", param=param)
    return raw
