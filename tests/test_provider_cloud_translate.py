"""The pure translation functions of the Google and Bedrock adapters: model tables, sizes,
seeds and error mapping, checked without a server."""

from __future__ import annotations

import pytest

from imagegate.config import ProviderConfig
from imagegate.errors import UpstreamHTTPError
from imagegate.providers.bedrock import amazon, invoke
from imagegate.providers.bedrock import models as bedrock
from imagegate.providers.google import content, imagen, models, vertex

# --- Bedrock ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (None, (1024, 1024)),
        ("auto", (1024, 1024)),
        ("1000x1000", (992, 992)),  # steps of 16
        ("1024x1792", (1024, 1792)),
        ("4096x4096", (2048, 2048)),  # at most 4.19 MP
        ("8192x1024", (4096, 1024)),  # 8:1 is narrowed to 4:1, sides within 4096
        ("100x100", (320, 320)),  # at least 320 a side
        ("200x1000", (320, 1280)),  # the short side raised to 320, the ratio kept (1:4)
    ],
)
def test_nova_size_follows_nova_canvas_rules(size: str | None, expected: tuple[int, int]) -> None:
    w, h = bedrock.nova_size(size)
    assert (w, h) == expected
    assert w % 16 == 0 and h % 16 == 0 and 320 <= min(w, h) and max(w, h) <= 4096
    assert w * h <= 4_194_304 and max(w, h) <= 4 * min(w, h)


def test_nova_size_refuses_garbage_by_name() -> None:
    with pytest.raises(UpstreamHTTPError) as info:
        bedrock.nova_size("big")
    assert (info.value.status, info.value.param) == (400, "size")


@pytest.mark.parametrize(
    ("model", "row"),
    [
        ("amazon.titan-image-generator-v2:0", bedrock.TITAN),
        ("us.amazon.nova-canvas-v1:0", bedrock.NOVA),  # an inference profile's prefix
        ("stability.sd3-5-large-v1:0", bedrock.STABILITY_EDIT),
        ("us.stability.stable-image-ultra-v1:1", bedrock.STABILITY_EDIT),
        ("stability.stable-image-core-v1:1", bedrock.STABILITY_GEN),
        ("amazon.titan-text-lite", None),
        ("x" * 300 + "nova-canvas", None),
    ],
)
def test_bedrock_models_are_matched_by_family(model: str, row: object) -> None:
    assert bedrock.match(model) is row


def test_bedrock_batches_and_seed_range_are_data() -> None:
    assert (bedrock.TITAN.batch, bedrock.NOVA.batch, bedrock.STABILITY_GEN.batch) == (5, 5, 1)
    assert bedrock.NOVA.caps.max_seed == bedrock.NOVA_MAX_SEED == 858_993_459
    assert bedrock.TITAN.caps.max_seed is None
    assert "amazon.nova-canvas-v1:0" in bedrock.TABLE


def test_nova_seed_offsets_wrap_inside_its_range() -> None:
    top = bedrock.NOVA_MAX_SEED
    assert amazon.wrapped_seed(bedrock.NOVA, None) is None
    assert [amazon.wrapped_seed(bedrock.NOVA, top + i) for i in range(3)] == [top, 0, 1]
    assert amazon.wrapped_seed(bedrock.TITAN, top + 1) == top + 1  # Titan has no such range


@pytest.mark.parametrize(
    ("message", "status", "code", "said"),
    [
        ("ThrottlingException: slow down", 429, "rate_limit_exceeded", "slow down"),
        ("ModelErrorException: it broke", 502, "provider_error", "it broke"),
        ("AccessDeniedException: no", 403, "insufficient_scope", "no"),
        ("ExpiredTokenException: old", 401, "provider_credential_invalid", "old"),
        # AWS's JSON protocols name the type in the body; the runner leaves such a body whole
        (
            '{"__type": "com.amazon.coral#UnrecognizedClientException", "Message": "who?"}',
            401,
            "provider_credential_invalid",
            "UnrecognizedClientException: who?",
        ),
        ("ValidationException: bad height", 400, "provider_invalid_request", "bad height"),
        ("a message: with a colon", 400, "provider_invalid_request", "a message: with a colon"),
    ],
)
def test_bedrock_error_types_map_to_statuses(
    message: str, status: int, code: str, said: str
) -> None:
    exc = UpstreamHTTPError(message, status=400, code="provider_invalid_request")
    mapped = invoke.errors(exc)
    assert (mapped.status, mapped.code) == (status, code)
    assert said in mapped.message


def test_a_bedrock_policy_refusal_stays_one() -> None:
    exc = UpstreamHTTPError("ThrottlingException: x", status=400, code="content_policy_violation")
    assert invoke.errors(exc) is exc


# --- Google -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "method", "batch", "operations"),
    [
        ("gemini-2.5-flash-image", "generateContent", 1, {"generations", "edits"}),
        ("gemini-2.5-flash", "generateContent", None, set()),  # makes no images
        ("imagen-4.0-generate-001", "predict", 4, {"generations"}),
        ("imagen-4.0-ultra-generate-001", "predict", 1, {"generations"}),
        ("imagegeneration@006", "predict", 4, {"generations"}),
        ("imagen-3.0-capability-001", "predict", 4, {"edits"}),
    ],
)
def test_google_model_rows(
    model: str, method: str, batch: int | None, operations: set[str]
) -> None:
    row = models.row(model, vertex=True)
    assert row is not None
    assert (row.method, row.batch, set(row.caps.operations)) == (method, batch, operations)


def test_google_names_that_cannot_go_into_a_url_are_unknown() -> None:
    for name in ("../../x-image", "gemini image", "a/b-image", "", "x" * 200):
        assert models.row(name, vertex=False) is None
    refused = models.row("imagen-3.0-capability-001", vertex=False)
    assert refused is not None and "Vertex AI only" in str(refused.caps.refused)
    gemini3 = models.row("gemini-3-pro-image-preview", vertex=False)
    assert gemini3 is not None and gemini3.caps.max_images == 14


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("imagen-4.0-generate-001", None, {}),
        ("imagen-4.0-generate-001", "auto", {}),
        ("imagen-4.0-generate-001", "1024x1024", {"aspectRatio": "1:1"}),
        ("imagen-4.0-generate-001", "1536x1024", {"aspectRatio": "4:3"}),  # nearest ratio
        (
            "imagen-4.0-generate-001",
            "1792x1024",
            {"aspectRatio": "16:9", "sampleImageSize": "2K"},
        ),  # more than 1K renders
        ("imagen-4.0-fast-generate-001", "1792x1024", {"aspectRatio": "16:9"}),  # no 2K there
        (
            "imagen-4.0-ultra-generate-001",
            "2048x2048",
            {"aspectRatio": "1:1", "sampleImageSize": "2K"},
        ),
    ],
)
def test_imagen_aspect_ratio_and_size_tier(
    model: str, size: str | None, expected: dict[str, str]
) -> None:
    row = models.row(model, vertex=True)
    assert row is not None
    assert imagen.size_parameters(row, size) == expected


@pytest.mark.parametrize(
    ("model", "size", "seed", "expected"),
    [
        ("gemini-2.5-flash-image", None, None, {"responseModalities": ["IMAGE"]}),
        (
            "gemini-2.5-flash-image",
            "1536x1024",
            7,
            {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:2"}, "seed": 7},
        ),
        (
            "gemini-2.0-flash-preview-image-generation",
            "1024x1024",
            None,
            {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "1:1"}},
        ),
        # Gemini 3 renders 2K and 4K: the longest side picks the tier (1K is the default)
        (
            "gemini-3-pro-image-preview",
            "1024x1024",
            None,
            {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1"}},
        ),
        (
            "gemini-3-pro-image-preview",
            "2048x2048",
            None,
            {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "1:1", "imageSize": "2K"},
            },
        ),
        (
            "gemini-3-pro-image-preview",
            "4096x2304",
            None,
            {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "16:9", "imageSize": "4K"},
            },
        ),
        # the same size on Gemini 2.5 asks for no tier it cannot render
        (
            "gemini-2.5-flash-image",
            "4096x2304",
            None,
            {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}},
        ),
    ],
)
def test_gemini_generation_config(
    model: str, size: str | None, seed: int | None, expected: dict[str, object]
) -> None:
    row = models.row(model, vertex=False)
    assert row is not None
    assert content.generation_config(row, size, seed) == expected


@pytest.mark.parametrize(
    ("message", "status", "code"),
    [
        ("API key not valid. Please pass a valid API key.", 401, "provider_credential_invalid"),
        (
            "This prompt contains sensitive words that violate Google's Responsible AI practices.",
            400,
            "content_policy_violation",
        ),
        ("Request contains an invalid argument.", 400, "provider_invalid_request"),
    ],
)
def test_google_error_conventions(message: str, status: int, code: str) -> None:
    mapped = models.errors(UpstreamHTTPError(message, status=400, code="provider_invalid_request"))
    assert (mapped.status, mapped.code, mapped.message) == (status, code, message)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({}, None),  # ADC may name the credentials and the project
        ({"api_key": "k"}, None),  # express mode
        ({"credentials_file": "/k.json"}, None),  # the key names its project
        ({"access_token": "t", "project_id": "p"}, None),
        ({"access_token": "t"}, "needs one of project_id, project with an access_token"),
        ({"access_token": "t", "api_key": "k"}, "needs one of project_id, project"),
    ],
)
def test_vertex_entry_rule(entry: dict[str, str], problem: str | None) -> None:
    found = vertex.check(ProviderConfig(**entry))
    assert found == problem if problem is None else (found or "").startswith(problem)
