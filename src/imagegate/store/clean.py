"""The one rule for text the store keeps, as pure functions (no I/O).

PostgreSQL rejects U+0000 in text and neither driver can encode a lone surrogate, and one bad
character must not cost a row. The rule is the same on both backends, and in the trace
writer's spill files: C0 control characters other than tab, newline and carriage return, and
lone surrogates (U+D800–U+DFFF), each become U+FFFD. ``clean_json`` makes any value JSON that
orjson accepts: too deep or too odd parts are turned into strings.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# orjson's output escapes a control character as \b, \f or \u00XX: such a hit (or a false one
# on an escaped backslash) sends the value down the cleaning path.
ESCAPED_CONTROL = re.compile(r"\\(?:u00[01]|[bf])")
MAX_JSON_DEPTH = 64  # deeper parts are stored as strings (orjson itself stops at 255)
_INT64 = 2**63


def clean(value: str) -> str:
    """``value`` with control characters (but tab, LF, CR) and lone surrogates as U+FFFD."""
    if _BAD_CHAR.search(value) is None:
        return value
    return _BAD_CHAR.sub(REPLACEMENT, value)


def clean_opt(value: Any) -> Any:
    """``clean`` for a value that may not be a string (None, numbers pass through)."""
    return clean(value) if isinstance(value, str) else value


def clean_json(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that orjson always accepts, strings cleaned, nesting bounded."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if depth >= MAX_JSON_DEPTH:
        return stringify(value)
    if isinstance(value, dict):
        return {clean(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, depth + 1) for v in value]
    return stringify(value)


def stringify(value: Any) -> str:
    """A part that cannot stay JSON, as text: its JSON if orjson manages, else its repr."""
    try:
        return clean(orjson.dumps(value, default=str).decode("utf-8"))
    except (TypeError, ValueError):
        pass
    try:
        return clean(repr(value))
    except (RecursionError, ValueError):  # repr of absurdly deep nesting
        return f"<unserialisable {type(value).__name__}>"
