"""Splicing base64 out of provider JSON gives exactly what orjson.loads gives."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from imagegate.providers.core import jsonsplice


def b64(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode()


BIG = b64(300_000)
OTHER = b64(200_000)

BODIES = [
    orjson.dumps({"created": 1, "data": [{"b64_json": BIG, "revised_prompt": 'a "b64_json"'}]}),
    orjson.dumps({"data": [{"b64_json": BIG}, {"b64_json": OTHER}, {"b64_json": "short"}]}),
    orjson.dumps({"predictions": [{"bytesBase64Encoded": BIG, "mimeType": "image/png"}]}),
    ('{ "data" : [ { "b64_json"  :\n "' + BIG + '" , "x": [1, 2.5, null, true] } ] }').encode(),
    ('{"data": [{"b64_json": "' + BIG.replace("/", "\\/") + '"}]}').encode(),  # escaped: plain
    orjson.dumps({"data": [{"b64_json": "é" + BIG}]}),  # not ASCII: plain path
    orjson.dumps({"data": [{"url": "https://x/y.png"}], "pad": "z" * 100_000}),  # no key
    orjson.dumps({"data": [{"b64_json": None}], "pad": "z" * 100_000}),
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_same_result_as_orjson(body: bytes) -> None:
    assert jsonsplice.loads(body) == orjson.loads(body)


def test_the_values_are_cut_out_before_parsing() -> None:
    assert jsonsplice._spans(BODIES[1]) == [
        (BODIES[1].index(BIG.encode()), BODIES[1].index(BIG.encode()) + len(BIG)),
        (BODIES[1].index(OTHER.encode()), BODIES[1].index(OTHER.encode()) + len(OTHER)),
    ]
    assert jsonsplice._spans(BODIES[4]) == []  # an escape inside: left to the parser


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"b64_json": "' + BIG.encode() + b'"}]',  # unclosed object
        b'{"data": [{"b64_json": "' + BIG.encode(),  # unterminated string
        b'{"data": [{"b64_json": "' + BIG.encode() + b'" "x"}]}',
    ],
)
def test_broken_json_still_raises(body: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        jsonsplice.loads(body)
