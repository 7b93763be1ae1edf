"""Vertex AI adapter (Imagen predict, mask editing, Gemini on Vertex, OAuth tokens) against a
fake Vertex AI, driven through the gateway over HTTP."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.client import answered_images, edit, error_of, generate
from fakes.core import Reply
from fakes.vertex import FakeVertex
from imagekit import alpha_mask, png
from live import live_gateway
from PIL import Image

from imagegate.config import ProviderConfig
from imagegate.providers.core.runner import SpecProvider
from imagegate.providers.google.vertex import SPEC

IMAGEN = "imagen-4.0-generate-001"
EDITOR = "imagen-3.0-capability-001"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake(key: rsa.RSAPrivateKey) -> Any:
    with FakeVertex(public_key=key.public_key()) as server:
        yield server


def token_config(fake: FakeVertex) -> dict[str, Any]:
    return fake.providers(access_token=fake.token)


def test_imagen_generation_translates_the_openai_fields(fake: FakeVertex, make_config: Any) -> None:
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = generate(
            gw.url,
            model=f"vertex/{IMAGEN}",
            prompt="a fox",
            n=2,
            size="1024x1792",
            output_format="jpeg",
            output_compression=80,
            seed=5,
            response_format="b64_json",
        )
    assert fake.violations == []
    assert [img.format for img in answered_images(r)] == ["JPEG", "JPEG"]
    (sent,) = fake.requests
    assert sent.path == (
        f"/v1/projects/proj-1/locations/us-central1/publishers/google/models/{IMAGEN}:predict"
    )
    assert sent.json == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {
            "sampleCount": 2,
            "aspectRatio": "9:16",
            "includeRaiReason": True,
            "seed": 5,
            "addWatermark": False,
            "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80},
            "sampleImageSize": "2K",
        },
    }


def test_service_account_key_is_exchanged_once_for_a_token(
    fake: FakeVertex, key: rsa.RSAPrivateKey, make_config: Any
) -> None:
    config = make_config(providers=fake.providers(credentials=fake.service_account(key)))
    with live_gateway(config) as gw:
        first = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
        second = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a cat")
    assert fake.violations == []
    assert first.status_code == second.status_code == 200, first.text
    assert fake.token_requests == 1  # cached until it nears expiry
    assert [s.headers["Authorization"] for s in fake.requests] == [f"Bearer {fake.token}"] * 2


def test_a_key_the_token_endpoint_refuses_is_a_401(fake: FakeVertex, make_config: Any) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    config = make_config(providers=fake.providers(credentials=fake.service_account(stranger)))
    with live_gateway(config) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
    assert r.status_code == 401, r.text
    assert error_of(r)["code"] == "provider_credential_invalid"
    assert fake.requests == []  # no predict without a token


def mask_of(sent: Any) -> Image.Image:
    refs = sent.json["instances"][0]["referenceImages"]
    (mask,) = [r for r in refs if r["referenceType"] == "REFERENCE_TYPE_MASK"]
    return Image.open(io.BytesIO(base64.b64decode(mask["referenceImage"]["bytesBase64Encoded"])))


def test_edit_turns_the_openai_mask_into_imagen_mask(fake: FakeVertex, make_config: Any) -> None:
    mask = alpha_mask(16, clear=(0, 0, 8, 16))  # left half transparent: edit there
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = edit(gw.url, [png()], mask=mask, model=f"vertex/{EDITOR}", prompt="a hat", n=2)
    assert fake.violations == []
    assert len(answered_images(r)) == 2
    (sent,) = fake.requests
    assert sent.json["parameters"]["editMode"] == "EDIT_MODE_INPAINT_INSERTION"
    assert sent.json["parameters"]["sampleCount"] == 2
    raw = sent.json["instances"][0]["referenceImages"][0]["referenceImage"]["bytesBase64Encoded"]
    assert base64.b64decode(raw) == png()
    mask = mask_of(sent)
    assert (mask.getpixel((2, 5)), mask.getpixel((12, 5))) == (255, 0)


def test_edit_without_mask_lets_the_whole_image_change(fake: FakeVertex, make_config: Any) -> None:
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = edit(gw.url, [png()], model=f"vertex/{EDITOR}", prompt="winter")
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert mask_of(fake.requests[0]).getextrema() == (255, 255)


def test_gemini_on_vertex_uses_generate_content(fake: FakeVertex, make_config: Any) -> None:
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = generate(
            gw.url, model="vertex/gemini-2.5-flash-image", prompt="a fox", size="1024x1024"
        )
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    assert fake.requests[0].path.endswith("/models/gemini-2.5-flash-image:generateContent")
    assert fake.requests[0].json["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1"}


def test_express_mode_uses_the_api_key_without_project(fake: FakeVertex, make_config: Any) -> None:
    entry = {"api_key": fake.api_key, "base_url": fake.url}
    with live_gateway(make_config(providers={"vertex": entry})) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert fake.requests[0].path == f"/v1/publishers/google/models/{IMAGEN}:predict"


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        # express mode: python-genai's BaseApiClient uses the global host for an API key
        # without a location (google/genai/_api_client.py)
        ({"api_key": "k"}, "https://aiplatform.googleapis.com"),
        (
            {"api_key": "k", "region": "europe-west4"},
            "https://europe-west4-aiplatform.googleapis.com",
        ),
        ({"project_id": "p"}, "https://us-central1-aiplatform.googleapis.com"),
        ({"project_id": "p", "api_key": "k"}, "https://us-central1-aiplatform.googleapis.com"),
        ({"project_id": "p", "region": "global"}, "https://aiplatform.googleapis.com"),
        ({"project_id": "p", "region": "eu"}, "https://aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_the_default_host_follows_the_sdk(entry: dict[str, str], host: str) -> None:
    """The vendor host can only be checked on the URL the adapter calls: tests reach
    nothing but 127.0.0.1, so the wire tests above set ``base_url``."""
    provider = SpecProvider(SPEC, "vertex", ProviderConfig(**entry))
    assert provider.origin_urls() == (host,)


RAI_TEXT = (
    "Image generation failed with the following error: The prompt could not be submitted. "
    "This prompt contains sensitive words that violate Google's Responsible AI practices."
)
RAI = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": RAI_TEXT}}
DENIED = {
    "error": {
        "code": 403,
        "status": "PERMISSION_DENIED",
        "message": "Permission 'aiplatform.endpoints.predict' denied",
    }
}
QUOTA = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"}}
FILTERED = {"predictions": [{"raiFilteredReason": "39322892: violates the policy on people"}]}


@pytest.mark.parametrize(
    ("reply", "status", "code", "says"),
    [
        (Reply(400, RAI), 400, "content_policy_violation", "Responsible AI"),
        (Reply(403, DENIED), 403, "insufficient_scope", "denied"),
        (Reply(429, QUOTA), 429, "rate_limit_exceeded", "Quota exceeded"),
        (Reply(200, FILTERED), 400, "content_policy_violation", "39322892"),
    ],
)
def test_errors_are_mapped(
    fake: FakeVertex, make_config: Any, reply: Reply, status: int, code: str, says: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code
    assert says in error_of(r)["message"]


def test_503_falls_back_to_the_next_model(fake: FakeVertex, make_config: Any) -> None:
    fake.script(Reply(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}))
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = generate(
            gw.url,
            model=f"vertex/{IMAGEN}",
            prompt="a fox",
            size="1024x1024",
            orq={"fallbacks": [{"model": "placeholder/x"}]},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: edit(url, [png()], model=f"vertex/{IMAGEN}", prompt="x"), "model"),
        (lambda url: generate(url, model=f"vertex/{EDITOR}", prompt="x"), "model"),
        (lambda url: generate(url, model=f"vertex/{IMAGEN}", prompt="x", size="4096x512"), "size"),
        (
            lambda url: generate(url, model=f"vertex/{IMAGEN}", prompt="x", output_format="webp"),
            "output_format",
        ),
        (lambda url: edit(url, [png()] * 2, model=f"vertex/{EDITOR}", prompt="x"), "image"),
    ],
)
def test_what_vertex_cannot_do_is_never_sent(
    fake: FakeVertex, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []


def test_parallel_imagen_batches_get_their_own_seed(fake: FakeVertex, make_config: Any) -> None:
    """n=6 is two predict calls (sampleCount 4 and 2): the same seed on both would draw the
    same first pictures twice."""
    with live_gateway(make_config(providers=token_config(fake))) as gw:
        r = generate(
            gw.url,
            model=f"vertex/{IMAGEN}",
            prompt="a fox",
            n=6,
            seed=5,
            response_format="b64_json",
        )
    assert fake.violations == []
    assert len(answered_images(r)) == 6
    sent = {
        s.json["parameters"]["sampleCount"]: s.json["parameters"]["seed"] for s in fake.requests
    }
    assert sent == {4: 5, 2: 6}


def test_an_entry_with_nothing_configured_is_accepted_for_adc(tmp_path: Any) -> None:
    """ADC may supply both the credentials and the project, so nothing is required at
    startup; a static token alone could never name the project and is refused there."""
    from imagegate.config import ConfigError, load_config

    config = load_config(env={}, overrides={"providers": {"vertex": {}}})
    assert config.providers["vertex"].option("project_id") is None
    with pytest.raises(ConfigError, match="access_token"):
        load_config(env={}, overrides={"providers": {"vertex": {"access_token": "t"}}})
