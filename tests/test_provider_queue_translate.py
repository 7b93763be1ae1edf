"""Unit tests for the queue providers' pure translations (fal, Replicate, BFL): sizes, aspect
ratios, model names with versions, output formats and the URLs an answer names. No server:
each function is called with plain values."""

from __future__ import annotations

from typing import Any

import pytest

from imagegate.errors import UpstreamConnectionError, UpstreamHTTPError
from imagegate.providers.core.call import Call
from imagegate.providers.queue import bfl, fal, replicate
from imagegate.providers.queue.common import followed
from imagegate.request import ImageRequest

# --- fal --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024x1024", "square_hd"),
        ("512x512", "square"),
        ("1024x576", "landscape_16_9"),
        ("576x1024", "portrait_16_9"),
        ("640x480", {"width": 640, "height": 480}),
        ("auto", None),
        (None, None),
    ],
)
def test_fal_image_size_is_a_preset_or_width_and_height(size: str | None, expected: Any) -> None:
    assert fal.image_size(size) == expected


def test_fal_refuses_a_size_that_is_not_width_x_height() -> None:
    with pytest.raises(UpstreamHTTPError) as caught:
        fal.image_size("big")
    assert (caught.value.status, caught.value.param) == (400, "size")


def test_fal_size_fields_follow_the_models_size_style() -> None:
    dev, ultra = fal.MODELS["fal-ai/flux/dev"], fal.MODELS["fal-ai/flux-pro/v1.1-ultra"]
    imagen, kontext = fal.MODELS["fal-ai/imagen4/preview"], fal.MODELS["fal-ai/flux-pro/kontext"]
    assert fal.size_fields(dev, "1024x768") == {"image_size": "landscape_4_3"}
    assert fal.size_fields(ultra, "1792x1024") == {"aspect_ratio": "16:9"}
    assert fal.size_fields(ultra, "2100x900") == {"aspect_ratio": "21:9"}
    assert fal.size_fields(imagen, "2100x900") == {"aspect_ratio": "16:9"}  # no 21:9 there
    assert fal.size_fields(kontext, "1024x1024") == {}
    assert fal.size_fields(dev, "auto") == fal.size_fields(ultra, None) == {}


def test_fal_unknown_models_take_the_common_schema_one_image_per_call() -> None:
    assert fal.SPEC.models.entry("someone/new-model") is fal.UNKNOWN
    assert fal.UNKNOWN.batch is None and fal.MODELS["fal-ai/flux/dev"].batch == 4


# --- Replicate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("black-forest-labs/flux-dev", ("black-forest-labs/flux-dev", None)),
        ("someone/custom:" + "a" * 64, ("someone/custom", "a" * 64)),
        ("someone/custom:", ("someone/custom", None)),
    ],
)
def test_replicate_split_version(model: str, expected: tuple[str, str | None]) -> None:
    assert replicate.split_version(model) == expected


def test_replicate_a_pinned_version_is_its_models_row() -> None:
    schnell = replicate.MODELS["black-forest-labs/flux-schnell"]
    assert replicate.SPEC.models.entry("black-forest-labs/flux-schnell:abc") is schnell
    assert replicate.SPEC.models.entry("someone/custom:abc") is replicate.UNKNOWN
    assert replicate.match("someone/custom") is None


@pytest.mark.parametrize(("fmt", "sent"), [("jpeg", "jpg"), ("png", "png"), ("webp", "webp")])
def test_replicate_output_format(fmt: str, sent: str) -> None:
    assert replicate.output_format(fmt) == sent
    assert replicate.output_format(None) is None


def test_replicate_wait_is_bounded_to_what_replicate_allows() -> None:
    from imagegate.config import ProviderConfig

    def wait(value: Any) -> Any:
        return replicate.setup(ProviderConfig(api_key="k", wait_s=value))["wait_s"]

    assert (wait(5), wait(0.4), wait(600), wait("7"), wait("soon"), wait(None)) == (
        5,
        1,
        60,
        7,
        None,
        None,
    )


# --- BFL --------------------------------------------------------------------------------------


def test_bfl_size_fields_fit_the_grid_or_take_a_ratio() -> None:
    pro, ultra = bfl.MODELS["flux-pro-1.1"], bfl.MODELS["flux-pro-1.1-ultra"]
    fill = bfl.MODELS["flux-pro-1.0-fill"]
    assert bfl.size_fields(pro, "1792x1024") == {"width": 1440, "height": 832}
    assert bfl.size_fields(bfl.FLUX2, "1920x1080") == {"width": 1920, "height": 1088}
    assert bfl.size_fields(ultra, "1024x1792") == {"aspect_ratio": "9:16"}
    assert bfl.size_fields(fill, "1024x1024") == bfl.size_fields(pro, "auto") == {}


@pytest.mark.parametrize("wh", [(1, 1), (1, 4999), (4999, 1), (3000, 2000), (2049, 2049)])
def test_bfl_fit_size_keeps_the_shape_inside_the_rules(wh: tuple[int, int]) -> None:
    w, h = bfl.fit_size(wh, bfl.FLUX2.step, bfl.FLUX2.side, bfl.FLUX2.max_pixels)
    assert w % 16 == 0 and h % 16 == 0
    assert 64 <= min(w, h) and max(w, h) <= 2048 and w * h <= bfl.FLUX2_MAX_PIXELS
    assert (w >= h) == (wh[0] >= wh[1])  # landscape stays landscape


def test_bfl_safety_tolerance_garbage_falls_back_to_bfls_default() -> None:
    from imagegate.config import ProviderConfig

    def tolerance(value: Any) -> Any:
        return bfl.setup(ProviderConfig(api_key="k", safety_tolerance=value))["safety_tolerance"]

    assert (tolerance(2), tolerance("4"), tolerance("high"), tolerance(None)) == (2, 4, None, None)


# --- URLs an answer names -----------------------------------------------------------------------


def test_followed_uses_a_given_absolute_url_or_the_default_path() -> None:
    call: Call[Any] = Call(
        "q", "m", bfl.FLUX2, ImageRequest(operation="generations", model="q/m", prompt="p"), {}
    )
    given = followed(call, "https://api.eu1.bfl.ai/v1/get_result?id=1", "/x", "polling_url")
    assert (given.path, given.method, given.what) == (
        "https://api.eu1.bfl.ai/v1/get_result?id=1",
        "GET",
        "polling_url",
    )
    assert followed(call, None, "/jobs/1/cancel", "cancel_url", "PUT").path == "/jobs/1/cancel"
    for relative in ("/elsewhere", "@evil.example/x", "evil.example/x", "file:///etc/passwd"):
        with pytest.raises(UpstreamConnectionError, match="polling_url is not on the provider"):
            followed(call, relative, "/x", "polling_url")
