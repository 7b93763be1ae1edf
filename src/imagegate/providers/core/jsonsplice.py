"""Parse a provider's JSON without running the parser over megabytes of base64.

An images response is ~99 % one string: ``"b64_json": "<1.5 MB>"``. ``orjson.loads`` must
scan all of it for escapes and UTF-8 (~0.7–1.1 ms per image on the benchmark machine). Here
each long base64 value is cut out with ``bytes.find`` (base64 holds no quote or backslash),
the small skeleton left is parsed, and the values are put back as ``str`` (an ASCII check and
a copy, ~0.2 ms). Anything unusual (an escape inside the value, a short body) takes the plain
``orjson.loads`` path, so the result is always what ``orjson.loads`` would return::

    doc = loads(body)   # same as orjson.loads(body), cheaper on image payloads
"""

from __future__ import annotations

from typing import Any

import orjson

KEYS: tuple[bytes, ...] = (b'"b64_json"', b'"bytesBase64Encoded"')
MIN_BODY = 64 * 1024  # below this the plain parse is as cheap
MIN_VALUE = 4 * 1024  # values shorter than this stay in the skeleton
MARKER = "\x00imagegate-spliced-"  # what the skeleton's placeholder parses to
MARKER_JSON = "\\u0000imagegate-spliced-"  # the same, as JSON text
SPACE = b" \t\r\n"


def loads(body: bytes) -> Any:
    """``orjson.loads(body)``; raises ``orjson.JSONDecodeError`` the same way."""
    if len(body) < MIN_BODY:
        return orjson.loads(body)
    spans = _spans(body)
    if not spans:
        return orjson.loads(body)
    view = memoryview(body)
    skeleton: list[bytes | memoryview] = []
    values: list[str] = []
    last = 0
    for start, end in spans:
        try:
            values.append(str(view[start:end], "ascii"))
        except UnicodeDecodeError:
            return orjson.loads(body)
        skeleton += [view[last:start], f"{MARKER_JSON}{len(values) - 1}".encode()]
        last = end
    skeleton.append(view[last:])
    doc = orjson.loads(b"".join(skeleton))
    return _restore(doc, values)


def _spans(body: bytes) -> list[tuple[int, int]]:
    """(start, end) of each long string value under one of ``KEYS`` (quotes excluded).

    A key is only looked for between the values already found, so the megabytes of base64
    are scanned once, not once per key."""
    spans: list[tuple[int, int]] = []
    for key in KEYS:
        gaps, last = [], 0
        for start, end in sorted(spans):
            gaps.append((last, start))
            last = end
        gaps.append((last, len(body)))
        for gap_start, gap_end in gaps:
            found_spans = _spans_of(body, key, gap_start, gap_end)
            if found_spans is None:
                return []
            spans += found_spans
    spans.sort()
    return spans


def _spans_of(body: bytes, key: bytes, pos: int, stop: int) -> list[tuple[int, int]] | None:
    """Long values under ``key`` in ``body[pos:stop]``; None when one must not be spliced."""
    spans: list[tuple[int, int]] = []
    while (found := body.find(key, pos, stop)) >= 0:
        pos = found + len(key)
        while pos < len(body) and body[pos] in SPACE:
            pos += 1
        if body[pos : pos + 1] != b":":
            continue
        pos += 1
        while pos < len(body) and body[pos] in SPACE:
            pos += 1
        if body[pos : pos + 1] != b'"':
            continue
        start = pos + 1
        end = body.find(b'"', start)
        if end < 0:
            return None  # unterminated: let the parser report it
        pos = end + 1
        if end - start < MIN_VALUE:
            continue
        if body.find(b"\\", start, end) >= 0:
            return None  # an escape inside: not plain base64, parse it the normal way
        spans.append((start, end))
    return spans


def _restore(node: Any, values: list[str]) -> Any:
    if isinstance(node, str):
        if node.startswith(MARKER):
            return values[int(node[len(MARKER) :])]
        return node
    if isinstance(node, dict):
        return {key: _restore(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_restore(item, values) for item in node]
    return node
