"""Azure OpenAI adapter against a fake Azure endpoint, driven through the gateway over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from fakes.azure import FakeAzure
from fakes.scripted import Received, Reply, answered_images, edit, error_of, generate, image_bytes
from live import live_gateway


@pytest.fixture
def fake() -> Any:
    with FakeAzure() as server:
        yield server


def test_generation_uses_deployment_path_and_api_key(fake: FakeAzure, make_config: Any) -> None:
    config = make_config(providers=fake.providers(deployments={"gpt-image-1": "img-prod"}))
    with live_gateway(config) as gw:
        r = generate(gw.url, model="azure/gpt-image-1", prompt="a fox", n=2, size="1024x1536",
                     quality="low", response_format="b64_json")  # fmt: skip
    assert fake.violations == []
    assert [img.format for img in answered_images(r)] == ["PNG", "PNG"]
    assert r.headers["x-orq-model"] == "azure/gpt-image-1"
    assert r.json()["usage"]["input_tokens_details"] == {"text_tokens": 12, "image_tokens": 0}
    (sent,) = fake.requests
    assert sent.path == "/openai/deployments/img-prod/images/generations"
    assert sent.json == {"prompt": "a fox", "n": 2, "size": "1024x1536", "quality": "low"}


def test_edit_is_multipart_with_image_and_mask(fake: FakeAzure, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = edit(gw.url, [image_bytes()], mask=image_bytes(index=3), model="azure/gpt-image-1",
                 prompt="add a hat", size="1024x1024")  # fmt: skip
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    (sent,) = fake.requests
    assert sent.path == "/openai/deployments/gpt-image-1/images/edits"
    assert sent.fields == {"prompt": ["add a hat"], "size": ["1024x1024"]}
    assert [(f.field, f.data) for f in sent.files] == [
        ("image", image_bytes()), ("mask", image_bytes(index=3))
    ]  # fmt: skip


def test_v1_api_names_the_deployment_in_the_body(make_config: Any) -> None:
    with FakeV1() as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="azure/gpt-image-1", prompt="a fox")
    assert r.status_code == 200, r.text
    assert fake.seen == [("/openai/v1/images/generations", "gpt-image-1", "azure-key", False)]


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(400, {"error": {"code": "contentFilter", "message":
                               "Your task failed as a result of our safety system."}}),
         400, "content_policy_violation"),
        (Reply(422, {"error": {"code": "moderation_blocked", "message":
                               "Your request was rejected by the safety system."}}),
         400, "content_policy_violation"),
        (Reply(429, {"error": {"code": "429", "message": "Rate limit is exceeded."}},
               retry_after="1"), 429, "rate_limit_exceeded"),
        (Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid key"}}),
         401, "provider_credential_invalid"),
    ],
)  # fmt: skip
def test_errors_are_mapped(
    fake: FakeAzure, make_config: Any, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="azure/gpt-image-1", prompt="a fox")
    assert r.status_code == status, r.text
    err = error_of(r)
    assert err["code"] == code
    assert reply.body["error"]["message"] in err["message"]


def test_503_falls_back_to_the_next_model(fake: FakeAzure, make_config: Any) -> None:
    fake.script(Reply(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="azure/gpt-image-1", prompt="a fox", size="1024x1024",
                     orq={"fallbacks": [{"model": "placeholder/x"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: edit(url, [image_bytes()], model="azure/dall-e-3", prompt="x"), "model"),
        (lambda url: generate(url, model="azure/gpt-image-1", prompt="x", size="512x512"), "size"),
        (lambda url: edit(url, [image_bytes()], operation="variations", model="azure/dall-e-2"),
         "model"),
        # Azure serves png and jpeg only, and no edits on DALL·E (Azure's how-to/dall-e)
        (lambda url: generate(url, model="azure/gpt-image-1", prompt="x", output_format="webp"),
         "output_format"),
        (lambda url: edit(url, [image_bytes()], model="azure/dall-e-2", prompt="x"), "model"),
    ],
)  # fmt: skip
def test_what_azure_cannot_do_is_never_sent(
    fake: FakeAzure, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []


class FakeV1(FakeAzure):
    """The GA ``/openai/v1`` API: no api-version, the deployment as ``model`` in the body."""

    def __init__(self) -> None:
        super().__init__(api_version="v1")
        self.seen: list[tuple[str, str, str | None, bool]] = []
        self.app.router.add_post("/openai/v1/images/generations", self._v1)

    async def _v1(self, request: web.Request) -> web.Response:
        doc = await request.json()
        has_version = "api-version" in request.query
        self.seen.append(
            (request.path, doc.get("model"), request.headers.get("api-key"), has_version)
        )
        received = Received("generations", request.path, dict(request.headers), json=doc)
        return web.json_response(self._success(received, ""))
