"""The streaming multipart tokenizer: same parts whatever the chunking, strict on bad bodies."""

from __future__ import annotations

import random

import pytest
from python_multipart.multipart import MultipartParser

from imagegate.api.formparser import FormError, FormParser

BOUNDARY = b"b0undary-x"


class Sink:
    def __init__(self) -> None:
        self.parts: list[tuple[dict[bytes, bytes], bytes]] = []
        self._data: list[bytes] = []
        self._headers: dict[bytes, bytes] | None = None
        self.open = False

    def begin(self, headers: dict[bytes, bytes]) -> None:
        assert not self.open
        self.open, self._headers, self._data = True, headers, []

    def data(self, chunk: memoryview) -> None:
        assert self.open and len(chunk) > 0
        self._data.append(bytes(chunk))

    def end(self) -> None:
        assert self.open and self._headers is not None
        self.parts.append((self._headers, b"".join(self._data)))
        self.open = False


def body(*parts: tuple[str, bytes], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = [preamble]
    for name, content in parts:
        out.append(b"--" + BOUNDARY + b"\r\n")
        out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(content + b"\r\n")
    out.append(b"--" + BOUNDARY + b"--\r\n" + epilogue)
    return b"".join(out)


def parse(raw: bytes, cuts: list[int]) -> list[tuple[dict[bytes, bytes], bytes]]:
    sink = Sink()
    parser = FormParser(BOUNDARY, sink)
    last = 0
    for cut in [*sorted(cuts), len(raw)]:
        parser.feed(raw[last:cut])
        last = cut
    parser.close()
    assert not sink.open
    return sink.parts


def tricky_bytes(n: int, seed: int) -> bytes:
    """Binary content dense in CR, LF, dashes and prefixes of the delimiter."""
    rng = random.Random(seed)
    pieces = [b"\r", b"\n", b"-", b"\r\n", b"\r\n-", b"\r\n--", b"\r\n--b0und"]
    pieces.append(b"--" + BOUNDARY[:-1])
    out = bytearray()
    while len(out) < n:
        out += rng.choice(pieces) if rng.random() < 0.3 else rng.randbytes(rng.randint(1, 40))
    assert b"\r\n--" + BOUNDARY not in out  # content never holds the real delimiter
    return bytes(out[:n])


def oracle(raw: bytes) -> list[bytes]:
    """Part contents according to python-multipart, the parser this one replaced."""
    contents: list[bytes] = []
    current: list[bytes] = []

    def on_data(data: bytes, start: int, end: int) -> None:
        current.append(data[start:end])

    def on_end() -> None:
        contents.append(b"".join(current))
        current.clear()

    parser = MultipartParser(BOUNDARY, {"on_part_data": on_data, "on_part_end": on_end})
    parser.write(raw)
    parser.finalize()
    return contents


@pytest.mark.parametrize("seed", range(12))
def test_same_parts_as_python_multipart_under_any_chunking(seed: int) -> None:
    rng = random.Random(seed)
    parts = [(f"f{i}", tricky_bytes(rng.randint(0, 5000), seed * 10 + i)) for i in range(4)]
    raw = body(*parts, preamble=b"ignored preamble\r\n", epilogue=b"ignored epilogue")
    expected = [content for _, content in parts]
    assert oracle(body(*parts)) == expected  # (python-multipart refuses a preamble)
    for cuts in (
        [],
        list(range(1, len(raw))),  # one byte at a time
        [rng.randint(0, len(raw)) for _ in range(40)],
        list(range(0, len(raw), 7)),
    ):
        got = parse(raw, cuts)
        assert [content for _, content in got] == expected
        assert [h[b"content-disposition"] for h, _ in got] == [
            f'form-data; name="{name}"'.encode() for name, _ in parts
        ]


def test_headers_are_lowercased_and_stripped_and_padding_after_boundary_is_allowed() -> None:
    raw = (
        b"--" + BOUNDARY + b"  \t\r\n"
        b"Content-Disposition:  form-data; name=\"image\"; filename=\"a.png\" \r\n"
        b"CONTENT-TYPE: image/png\r\n\r\n\x89PNG\r\n--" + BOUNDARY + b"--"
    )
    [(headers, content)] = parse(raw, [5, 30])
    assert headers == {
        b"content-disposition": b'form-data; name="image"; filename="a.png"',
        b"content-type": b"image/png",
    }
    assert content == b"\x89PNG"


def test_empty_parts_and_parts_without_headers() -> None:
    raw = b"--" + BOUNDARY + b"\r\n\r\n\r\n--" + BOUNDARY + b"\r\n\r\nx\r\n--" + BOUNDARY + b"--"
    assert parse(raw, []) == [({}, b""), ({}, b"x")]


def test_a_body_without_the_closing_dashes_still_ends_after_its_last_part() -> None:
    raw = body(("a", b"1")).removesuffix(b"--\r\n")
    assert parse(raw, []) == [({b"content-disposition": b'form-data; name="a"'}, b"1")]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "no multipart part found"),
        (b"no boundary here at all", "no multipart part found"),
        (b"--" + BOUNDARY, "no multipart part found"),
        (b"--" + BOUNDARY + b"--", None),  # an empty form is well formed
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: x\r\n\r\ndata", "truncated part"),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: x", "truncated part"),
        (b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\n--" + BOUNDARY + b"--", "malformed"),
        (b"--" + BOUNDARY + b"garbage\r\n\r\n", "no line break"),
        (b"--" + BOUNDARY + b"\r\n" + b"X: y\r\n" * 17 + b"\r\n", "too many part headers"),
        (b"--" + BOUNDARY + b"\r\nX: " + b"y" * 20000, "headers too large"),
    ],
)
def test_malformed_bodies(raw: bytes, why: str | None) -> None:
    if why is None:
        assert parse(raw, []) == []
        return
    with pytest.raises(FormError, match=why):
        parse(raw, [])
    with pytest.raises(FormError, match=why):
        parse(raw, list(range(1, len(raw))))


def test_large_file_data_is_handed_on_in_few_pieces_without_copies() -> None:
    content = tricky_bytes(1_000_000, 99)
    raw = body(("image", content))
    sink = Sink()
    parser = FormParser(BOUNDARY, sink)
    pieces = 0
    original = sink.data

    def counting(chunk: memoryview) -> None:
        nonlocal pieces
        pieces += 1
        assert isinstance(chunk, memoryview)
        original(chunk)

    sink.data = counting  # type: ignore[method-assign]
    for i in range(0, len(raw), 65536):
        parser.feed(raw[i : i + 65536])
    parser.close()
    assert sink.parts[0][1] == content
    assert pieces <= 2 * (len(raw) // 65536 + 1)  # about one per chunk fed, not per CR
