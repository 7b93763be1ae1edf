"""Azure OpenAI adapter against a fake Azure endpoint, driven through the gateway over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from fakes import client
from fakes.azure import FakeAzure
from fakes.core import Reply
from imagekit import png
from live import LiveGateway, live_gateway

fake, gw = client.fixtures(FakeAzure)


def test_generation_uses_deployment_path_and_api_key(fake: FakeAzure, make_config: Any) -> None:
    config = make_config(providers=fake.providers(deployments={"gpt-image-1": "img-prod"}))
    with live_gateway(config) as gw:
        r = client.generate(
            gw.url,
            model="azure/gpt-image-1",
            prompt="a fox",
            n=2,
            size="1024x1536",
            quality="low",
            response_format="b64_json",
        )
    assert fake.violations == []
    assert [img.format for img in client.answered_images(r)] == ["PNG", "PNG"]
    assert r.headers["x-orq-model"] == "azure/gpt-image-1"
    assert r.json()["usage"]["input_tokens_details"] == {"text_tokens": 12, "image_tokens": 0}
    sent = client.only(fake)
    assert sent.path == "/openai/deployments/img-prod/images/generations"
    assert sent.json == {"prompt": "a fox", "n": 2, "size": "1024x1536", "quality": "low"}


def test_edit_is_multipart_with_image_and_mask(fake: FakeAzure, gw: LiveGateway) -> None:
    r = client.edit(
        gw.url,
        [png()],
        mask=png(3),
        model="azure/gpt-image-1",
        prompt="add a hat",
        size="1024x1024",
    )
    assert fake.violations == []
    assert len(client.answered_images(r)) == 1
    sent = client.only(fake)
    assert sent.path == "/openai/deployments/gpt-image-1/images/edits"
    assert sent.fields == {"prompt": ["add a hat"], "size": ["1024x1024"]}
    assert [(f.field, f.data) for f in sent.files] == [("image", png()), ("mask", png(3))]


def test_v1_api_names_the_deployment_in_the_body(make_config: Any) -> None:
    with FakeV1() as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        r = client.generate(gw.url, model="azure/gpt-image-1", prompt="a fox")
    assert r.status_code == 200, r.text
    assert fake.violations == []
    sent = client.only(fake)
    assert (sent.path, sent.values["model"], sent.headers["api-key"]) == (
        "/openai/v1/images/generations",
        "gpt-image-1",
        "azure-key",
    )
    assert "api-version" not in sent.query


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            Reply(
                400,
                {
                    "error": {
                        "code": "contentFilter",
                        "message": "Your task failed as a result of our safety system.",
                    }
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                422,
                {
                    "error": {
                        "code": "moderation_blocked",
                        "message": "Your request was rejected by the safety system.",
                    }
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                429,
                {"error": {"code": "429", "message": "Rate limit is exceeded."}},
                retry_after="1",
            ),
            429,
            "rate_limit_exceeded",
        ),
        (
            Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid key"}}),
            401,
            "provider_credential_invalid",
        ),
    ],
)
def test_errors_are_mapped(
    fake: FakeAzure, gw: LiveGateway, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    error = client.assert_error(
        client.generate(gw.url, model="azure/gpt-image-1", prompt="a fox"), status, code
    )
    assert reply.body["error"]["message"] in error["message"]


def test_503_falls_back_to_the_next_model(fake: FakeAzure, gw: LiveGateway) -> None:
    fake.script(Reply(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    body = client.with_fallback(model="azure/gpt-image-1", prompt="a fox", size="1024x1024")
    client.assert_fell_back(client.generate(gw.url, **body), fake)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: client.edit(url, [png()], model="azure/dall-e-3", prompt="x"), "model"),
        (
            lambda url: client.generate(url, model="azure/gpt-image-1", prompt="x", size="512x512"),
            "size",
        ),
        (
            lambda url: client.edit(url, [png()], operation="variations", model="azure/dall-e-2"),
            "model",
        ),
        # Azure serves png and jpeg only, and no edits on DALL·E (Azure's how-to/dall-e)
        (
            lambda url: client.generate(
                url, model="azure/gpt-image-1", prompt="x", output_format="webp"
            ),
            "output_format",
        ),
        (lambda url: client.edit(url, [png()], model="azure/dall-e-2", prompt="x"), "model"),
    ],
)
def test_what_azure_cannot_do_is_never_sent(
    fake: FakeAzure, gw: LiveGateway, call: Any, param: str
) -> None:
    client.assert_unsent(call(gw.url), fake, param)


class FakeV1(FakeAzure):
    """The GA ``/openai/v1`` API: no api-version, the deployment as ``model`` in the body."""

    def __init__(self) -> None:
        super().__init__(api_version="v1")
        self.app.router.add_post("/openai/v1/images/generations", self._v1)

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        problems: list[str] = []
        self.expect_json(received, problems)
        if request.headers.get("api-key") != self.api_key:
            problems.append(f"api-key header is {request.headers.get('api-key')!r}")
        return await self.respond(request, received, problems, lambda: self.success(received))
