"""Unit tests of the pure translation functions every provider spec shares (core/sizes.py,
core/masks.py, core/policy.py, core/answers.py)."""

from __future__ import annotations

import io

import pytest
from imagekit import alpha_mask, solid
from PIL import Image

from imagegate.errors import UpstreamHTTPError
from imagegate.providers.core import masks, policy
from imagegate.providers.core.answers import merge, openai_images
from imagegate.providers.core.sizes import (
    GridSizes,
    RatioSizes,
    aspect_ratio,
    batches,
    nearest_size,
    parse_wh,
    side_tier,
    split_wh,
)
from imagegate.providers.openai import openai
from imagegate.request import GeneratedImage, ImageResult, UploadedFile


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024x768", (1024, 768)),
        ("64X32", (64, 32)),
        ("auto", None),
        (None, None),
        ("", None),
        ("0x10", None),
        ("10x", None),
        ("x10", None),
        ("²x1", None),
        ("１０x１０", None),
        ("1234567x1", None),
        ("-1x5", None),
        ("1.5x2", None),
    ],
)
def test_one_wxh_parser_refuses_garbage(size: str | None, expected: tuple[int, int] | None) -> None:
    assert split_wh(size) == expected


def test_parse_wh_names_the_size_field_for_garbage() -> None:
    assert parse_wh("auto") is None and parse_wh(None) is None
    with pytest.raises(UpstreamHTTPError) as info:
        parse_wh("²x1")  # isdigit() says yes, int() says no: must be a 400, not a 500
    assert (info.value.status, info.value.param) == (400, "size")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1920x1080", "16:9"),
        ("1024x1024", "1:1"),
        ("1792x1024", "16:9"),
        ("1000x1500", "2:3"),
        ("4096x512", "21:9"),
        (None, "1:1"),
        ("auto", "1:1"),
    ],
)
def test_aspect_ratio_is_exact_or_nearest(size: str | None, expected: str) -> None:
    assert aspect_ratio(size, ("1:1", "16:9", "21:9", "2:3", "3:2")) == expected


def test_nearest_size_prefers_ratio_then_area() -> None:
    allowed = ((1024, 1024), (2048, 1024), (1536, 1024), (3072, 2048))
    assert nearest_size("1500x1000", allowed) == (1536, 1024)
    assert nearest_size("3000x2000", allowed) == (3072, 2048)
    assert nearest_size(None, allowed) == (1024, 1024)


def test_side_tier_and_batches() -> None:
    tiers = ((1024, "1K"), (2048, "2K"), (4096, "4K"))
    assert [side_tier(s, tiers) for s in ("512x512", "2048x1024", "9000x10", "junk")] == [
        "1K",
        "2K",
        "4K",
        None,
    ]
    assert batches(6, 4) == [4, 2]
    assert batches(5, 1) == [1] * 5
    assert batches(3, 10) == [3]
    assert batches(0, 0) == [1]


def test_ratio_sizes_accept_close_ratios_only() -> None:
    sizes = RatioSizes(("1:1", "16:9"), native=("1344x768",))
    assert {"auto", "1536x1024", "1344x768", "1920x1080", "1000x1000"} <= {
        s for s in ("auto", "1536x1024", "1344x768", "1920x1080", "1000x1000") if s in sizes
    }
    assert "4096x512" not in sizes and "²x1" not in sizes and 5 not in sizes


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ("auto", True),
        ("1024x1024", True),
        ("1536x864", True),
        ("3840x2160", True),
        ("2160x3840", True),
        ("1008x1008", True),
        ("1000x1000", False),
        ("3024x1008", True),
        ("3040x1008", False),
        ("3856x2160", False),
        ("3840x2176", False),
        ("2880x2880", True),
        ("2896x2896", False),
        ("16x16", True),
        ("512x1552", False),
    ],
)
def test_gpt_image_2_takes_any_size_on_its_grid(size: str, ok: bool) -> None:
    sizes = openai.GPT_IMAGE_2.caps.sizes
    assert sizes is not None and isinstance(sizes, GridSizes)
    assert (size in sizes) is ok
    assert "1536x864" not in (openai.GPT_IMAGE.caps.sizes or set())  # gpt-image-1: fixed sizes


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Your request was rejected by the safety system.", True),
        ("contentFilter", True),
        ("Generated image rejected by content moderation.", True),
        ("nsfw_prompt", True),
        ("flagged by our content moderation system", True),
        ("moderation_blocked", True),
        ("sensitive content detected", True),
        ("parameter is case sensitive", False),
        ("Rate limit reached", False),
        (None, False),
    ],
)
def test_one_policy_marker_list(text: str | None, found: bool) -> None:
    assert policy.is_policy(text) is found


def test_policy_refusal_depends_on_status() -> None:
    statuses = frozenset({400, 422})
    assert policy.refusal(422, "NSFW content", statuses)
    assert not policy.refusal(500, "NSFW content", statuses)
    assert not policy.refusal(400, "bad size", statuses)


async def test_one_mask_converter_for_every_convention() -> None:
    mask = UploadedFile.from_bytes(alpha_mask(8, clear=(0, 0, 4, 8)), field="mask")
    white = Image.open(io.BytesIO(await masks.provider_mask(mask, "white")))
    black = Image.open(io.BytesIO(await masks.provider_mask(mask, "black")))
    assert (white.getpixel((1, 1)), white.getpixel((6, 1))) == (255, 0)
    assert (black.getpixel((1, 1)), black.getpixel((6, 1))) == (0, 255)
    opaque = UploadedFile.from_bytes(solid(8, 255, "L"), field="mask")
    assert Image.open(io.BytesIO(await masks.provider_mask(opaque))).getpixel((3, 3)) == 255
    assert await masks.alpha_mask(opaque) is None
    image = UploadedFile.from_bytes(solid((6, 4)))
    blank = Image.open(io.BytesIO(await masks.edit_mask_png(None, image)))
    assert blank.size == (6, 4) and blank.getextrema() == (255, 255)


async def test_an_unreadable_mask_is_the_callers_400() -> None:
    junk = UploadedFile("mask", "m.png", "png", 20, data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 12)
    with pytest.raises(UpstreamHTTPError) as info:
        await masks.provider_mask(junk)
    assert (info.value.status, info.value.param) == (400, "mask")


def test_openai_images_and_merged_usage() -> None:
    usage = {
        "input_tokens": 1,
        "output_tokens": 2,
        "total_tokens": 3,
        "input_tokens_details": {"text_tokens": 1, "image_tokens": 0},
    }
    one = openai_images({"created": 5, "data": [{"b64_json": "QQ=="}], "usage": usage}, "p")
    two = ImageResult(images=[GeneratedImage(url="http://x/a.png")], usage=usage)
    merged = merge([one, two])
    assert [i.b64 or i.url for i in merged.images] == ["QQ==", "http://x/a.png"]
    assert merged.created == 5
    assert merged.usage is not None and merged.usage["total_tokens"] == 6
    assert merged.usage["input_tokens_details"] == {"text_tokens": 2, "image_tokens": 0}
    for bad in ({}, {"data": []}, {"data": [{"revised_prompt": "x"}]}, []):
        with pytest.raises(Exception, match="p: response"):
            openai_images(bad, "p")


def test_rule_sets_are_not_equal_to_their_listed_members() -> None:
    listed = frozenset({"auto", "1024x1024"})
    grid = GridSizes(listed, step=16, max_ratio=3, max_edge=3840, max_pixels=8_294_400)
    assert grid != listed and listed != grid
    assert grid == GridSizes(listed, step=16, max_ratio=3, max_edge=3840, max_pixels=8_294_400)
    assert RatioSizes(("1:1",)) != RatioSizes(("16:9",))
    assert openai.GPT_IMAGE != openai.GPT_IMAGE_2
    assert len({openai.GPT_IMAGE, openai.GPT_IMAGE_2}) == 2
