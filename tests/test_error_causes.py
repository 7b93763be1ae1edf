"""Errors that name their cause (issue 18): who refused (the gateway or the provider), what is
missing from a provider entry, which request field is at fault, and which model is unknown.

Everything runs over real HTTP: the gateway under uvicorn, providers as fake servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.azure import FakeAzure
from fakes.bedrock import FakeBedrock, aws_error
from fakes.bfl import FakeBFL
from fakes.google import FakeGoogle
from fakes.openai import FakeOpenAI, Reply
from fakes.recraft import FakeRecraft
from fakes.stability import FakeStability
from fakes.together import FakeTogether
from fakes.vertex import FakeVertex
from live import GEN, LiveGateway, live_gateway, post

from imagegate.config import Config, load_config

IMAGE_ERROR = {"message", "type", "param", "code"}


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert set(body) >= IMAGE_ERROR, body
    return body


# --- 1. a provider's refusal says it came from the provider --------------------------------


@pytest.fixture(scope="module")
def openai_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, LiveGateway]]:
    tmp = tmp_path_factory.mktemp("causes")
    with FakeOpenAI() as fake:
        overrides = {
            "data_dir": str(tmp),
            "storage": {"path": str(tmp / "blobs")},
            "providers": fake.providers(),
        }
        with live_gateway(load_config(env={}, overrides=overrides)) as gw:
            yield fake, gw


def openai_error(message: str, code: str | None = None, param: str | None = None) -> Any:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


@pytest.mark.parametrize(
    ("status", "body", "code", "etype", "param"),
    [
        (
            400,
            openai_error(
                "Invalid value: 'ultra'. Supported values are: 'low', 'high'.",
                "invalid_value",
                "quality",
            ),
            "provider_invalid_request",
            "invalid_request_error",
            "quality",
        ),
        (
            400,
            openai_error("Billing hard limit has been reached"),
            "provider_invalid_request",
            "invalid_request_error",
            None,
        ),
        (
            404,
            openai_error("The model 'gpt-image-9' does not exist", "model_not_found", "model"),
            "provider_not_found",
            "invalid_request_error",
            "model",
        ),
        (
            422,
            {"detail": "prompt: field required"},
            "provider_invalid_request",
            "invalid_request_error",
            None,
        ),
        (
            401,
            openai_error("Incorrect API key provided", "invalid_api_key"),
            "provider_credential_invalid",
            "authentication_error",
            None,
        ),
        (
            403,
            openai_error("You are not allowed to use this model"),
            "insufficient_scope",
            "permission_error",
            None,
        ),
        (
            429,
            openai_error("Rate limit reached", "rate_limit_exceeded"),
            "rate_limit_exceeded",
            "rate_limit_error",
            None,
        ),
        (
            400,
            openai_error("Your request was rejected by the safety system.", "moderation_blocked"),
            "content_policy_violation",
            "invalid_request_error",
            None,
        ),
    ],
)
def test_a_provider_refusal_keeps_status_and_message_under_a_provider_code(
    openai_gw: tuple[FakeOpenAI, LiveGateway],
    status: int,
    body: Any,
    code: str,
    etype: str,
    param: str | None,
) -> None:
    fake, gw = openai_gw
    fake.script(Reply(status, body, retry_after="0"))
    r = post(gw, GEN, json={"model": "openai/gpt-image-1", "prompt": "a fox"})
    err = error(r, status)
    assert (err["code"], err["type"], err["param"]) == (code, etype, param)
    said = body["detail"] if "detail" in body else body["error"]["message"]
    assert said in err["message"]


def test_our_own_validation_stays_invalid_request_body(
    openai_gw: tuple[FakeOpenAI, LiveGateway],
) -> None:
    fake, gw = openai_gw
    sent = len(fake.requests)
    r = post(gw, GEN, json={"model": "openai/gpt-image-1", "prompt": "a fox", "n": 99})
    err = error(r, 400)
    assert (err["code"], err["param"]) == ("invalid_request_body", "n")
    assert len(fake.requests) == sent


def test_a_bedrock_validation_exception_is_the_providers(make_config: Any) -> None:
    with FakeBedrock() as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        fake.script(aws_error(400, "ValidationException", "height must be a multiple of 64"))
        r = post(
            gw, GEN, json={"model": "bedrock/amazon.titan-image-generator-v2:0", "prompt": "a fox"}
        )
        err = error(r, 400)
        assert err["code"] == "provider_invalid_request"
        assert "height must be a multiple of 64" in err["message"]
        fake.script(aws_error(404, "ResourceNotFoundException", "Model not found"))
        r = post(gw, GEN, json={"model": "bedrock/amazon.nova-canvas-v1:0", "prompt": "a fox"})
        assert error(r, 404)["code"] == "provider_not_found"


# --- 2. a provider entry missing credentials or its endpoint is a 503 ----------------------


def not_configured(r: httpx.Response, *words: str) -> dict[str, Any]:
    err = error(r, 503)
    assert (err["code"], err["type"]) == ("provider_not_configured", "api_error"), err
    for word in words:
        assert word in err["message"], err
    return err


def test_azure_without_base_url_is_503_not_configured(tmp_path: Path) -> None:
    """``load_config`` refuses such an entry at startup; a ``Config`` built in code (library
    use) still reaches the adapter, which must blame the entry, not the caller's key."""
    config = Config.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "storage": {"path": str(tmp_path / "blobs")},
            "providers": {"azure": {"api_key": "azure-key"}},
        }
    )
    with live_gateway(config) as gw:
        r = post(gw, GEN, json={"model": "azure/gpt-image-1", "prompt": "a fox"})
        not_configured(r, "azure", "base_url")
        # a 503 falls back like any other: the caller still gets an image
        r = post(
            gw,
            GEN,
            json={
                "model": "azure/gpt-image-1",
                "prompt": "a fox",
                "size": "64x64",
                "fallbacks": [{"model": "placeholder/x"}],
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-orq-model"] == "placeholder/x"


def test_azure_without_a_key_never_blames_the_callers_key(make_config: Any) -> None:
    with FakeAzure() as fake:
        entry = {"base_url": fake.url, "api_version": fake.api_version}
        with live_gateway(make_config(providers={"azure": entry})) as gw:
            r = post(gw, GEN, json={"model": "azure/gpt-image-1", "prompt": "a fox"})
        assert r.status_code != 401, r.text
        err = r.json()["error"]
        assert err["type"] != "authentication_error", err
        assert "azure" in err["message"] and "api_key" in err["message"], err
        assert fake.requests == []


def test_vertex_without_credentials_is_503(make_config: Any) -> None:
    with FakeVertex() as fake:
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = post(gw, GEN, json={"model": "vertex/imagen-4.0-generate-001", "prompt": "p"})
        not_configured(r, "vertex", "credentials")
        assert fake.requests == [] and fake.token_requests == 0


def test_bedrock_without_aws_credentials_is_503(
    make_config: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance endpoint
    with FakeBedrock() as fake:
        entry = {"base_url": fake.url, "region": fake.region}
        with live_gateway(make_config(providers={"bedrock": entry})) as gw:
            r = post(gw, GEN, json={"model": "bedrock/amazon.nova-canvas-v1:0", "prompt": "p"})
        not_configured(r, "bedrock", "AWS credentials")
        assert fake.requests == []


# --- 3. every validation error names its field ---------------------------------------------


@pytest.mark.parametrize("size", ["banana", "0x512", "64x", "99999x64"])
def test_a_bad_size_on_the_placeholder_names_size(make_config: Any, size: str) -> None:
    with live_gateway(make_config()) as gw:
        r = post(gw, GEN, json={"model": "placeholder/x", "prompt": "a fox", "size": size})
    err = error(r, 400)
    assert (err["code"], err["param"]) == ("invalid_request_body", "size"), err
    assert size in err["message"]


@pytest.mark.parametrize("model", ["together/black-forest-labs/FLUX.1-schnell", "bfl/flux-dev"])
def test_a_bad_size_on_a_provider_names_size_and_sends_nothing(
    make_config: Any, model: str
) -> None:
    fake_type = FakeTogether if model.startswith("together") else FakeBFL
    with fake_type() as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": model, "prompt": "a fox", "size": "banana"})
        err = error(r, 400)
        assert (err["code"], err["param"]) == ("invalid_request_body", "size"), err
        sent = fake.requests if isinstance(fake, FakeTogether) else fake.received(method="POST")
        assert sent == []


# --- 4. a model an adapter does not know says so -------------------------------------------


def unknown(r: httpx.Response) -> str:
    err = error(r, 400)
    assert (err["code"], err["param"]) == ("unsupported_engine", "model"), err
    message: str = err["message"]
    assert "does not support" not in message, message
    return message


def test_an_unknown_stability_model_is_named(make_config: Any) -> None:
    with FakeStability() as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": "stability/not-a-model", "prompt": "a fox"})
        assert fake.requests == []
    message = unknown(r)
    assert "unknown model 'not-a-model' for provider stability (known: " in message
    assert "stable-image-ultra" in message and "sd3.5-large" in message


def test_unknown_bfl_and_bedrock_models_are_named(make_config: Any) -> None:
    with FakeBFL() as bfl, FakeBedrock() as bedrock:
        providers = {**bfl.providers(), **bedrock.providers()}
        with live_gateway(make_config(providers=providers)) as gw:
            flux = post(gw, GEN, json={"model": "bfl/flux-9", "prompt": "a fox"})
            titan = post(gw, GEN, json={"model": "bedrock/amazon.titan-text-lite", "prompt": "x"})
    assert "unknown model 'flux-9' for provider bfl (known: " in unknown(flux)
    assert "flux-pro-1.1" in unknown(flux)
    assert "unknown model 'amazon.titan-text-lite' for provider bedrock" in unknown(titan)
    assert "nova-canvas" in unknown(titan)


def test_models_that_make_no_images_say_why(make_config: Any) -> None:
    with FakeRecraft() as recraft, FakeGoogle() as google:
        providers = {**recraft.providers(), **google.providers()}
        with live_gateway(make_config(providers=providers)) as gw:
            vector = post(gw, GEN, json={"model": "recraft/recraftv3_vector", "prompt": "x"})
            text = post(gw, GEN, json={"model": "google/gemini-2.5-pro", "prompt": "x"})
    assert "vector model" in unknown(vector) and "SVG" in unknown(vector)
    assert "not an image model" in unknown(text)


def test_an_entry_written_without_its_key_is_the_operators_503(tmp_path: Path) -> None:
    """An Azure entry in the config with an endpoint but no key: the caller's key is fine, the
    gateway's config is not — 503 provider_not_configured, never a 401 or a 400 on the model."""
    config = load_config(
        env={},
        overrides={
            "data_dir": str(tmp_path / "d"),
            "storage": {"path": str(tmp_path / "b")},
            "api_keys": ["sk-caller"],
            "providers": {"azure": {"base_url": "http://127.0.0.1:9/openai"}},
        },
    )
    with live_gateway(config) as gw:
        r = post(
            gw,
            GEN,
            headers={"Authorization": "Bearer sk-caller"},
            json={"model": "azure/dall-e-3", "prompt": "a fox"},
        )
        err = error(r, 503)
        assert err["code"] == "provider_not_configured" and "azure" in err["message"]
        # A provider nobody configured at all stays the caller's 400 (wrong model name).
        r = post(
            gw,
            GEN,
            headers={"Authorization": "Bearer sk-caller"},
            json={"model": "together/flux", "prompt": "a fox"},
        )
        assert error(r, 400)["code"] == "unsupported_engine"
