"""Bearer keys: clear or sha256, checked before anything else; 401s the orq SDK can parse."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
from live import GEN, LiveGateway, live_gateway
from orq_ai_sdk import Orq
from orq_ai_sdk.models import APIErrorResponse

from imagegate.api.auth import Authenticator, key_id
from imagegate.config import load_config
from imagegate.errors import AuthenticationRequired, InvalidApiKey
from imagegate.workspaces import OPERATOR

CLEAR = "sk-clear-key"
HASHED = "sk-hashed-key"
BODY = {"model": "placeholder/x", "prompt": "p", "size": "16x16"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("auth")
    digest = hashlib.sha256(HASHED.encode()).hexdigest()
    overrides = {
        "data_dir": str(tmp),
        "storage": {"path": str(tmp / "blobs")},
        "api_keys": [CLEAR, f"sha256:{digest}"],
    }
    with live_gateway(load_config(env={}, overrides=overrides)) as server:
        yield server


@pytest.mark.parametrize("key", [CLEAR, HASHED])
def test_configured_keys_work(gw: LiveGateway, key: str) -> None:
    with Orq(api_key=key, server_url=gw.url) as orq:
        res = orq.router.images.generations.create(**BODY)
    assert len(res.data) == 1


def test_wrong_key_raises_api_error_response(gw: LiveGateway) -> None:
    with Orq(api_key="sk-wrong", server_url=gw.url) as orq:
        with pytest.raises(APIErrorResponse) as info:
            orq.router.images.generations.create(**BODY)
    error = info.value.data.error
    assert (error.code, error.type) == ("invalid_api_key", "authentication_error")
    assert error.param is None
    assert str(info.value) == "invalid API key"


def test_missing_key_is_401_for_the_orq_sdk(
    gw: LiveGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORQ_API_KEY", raising=False)
    with Orq(server_url=gw.url) as orq, pytest.raises(APIErrorResponse) as info:
        orq.router.images.edits.create(
            model="placeholder/x", prompt="p", image={"file_name": "a.png", "content": b"x"}
        )
    assert info.value.data.error.code == "authentication_required"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer \tx", "Basic c2stY2xlYXIta2V5", "sk-clear-key", "Bearer sk-clear"],
)
def test_bad_authorization_headers_are_401(gw: LiveGateway, header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    r = httpx.post(gw.url + GEN, json=BODY, headers=headers)
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] in ("authentication_required", "invalid_api_key")
    assert error["param"] is None and error["type"] == "authentication_error"


def test_auth_comes_before_body_parsing(gw: LiveGateway) -> None:
    r = httpx.post(gw.url + GEN, content=b"{broken", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401
    r = httpx.post(gw.url + GEN, content=b"{broken", headers={"authorization": f"Bearer {CLEAR}"})
    assert r.status_code == 400


def test_health_and_openapi_need_no_key(gw: LiveGateway) -> None:
    assert httpx.get(gw.url + "/health").status_code == 200
    assert httpx.get(gw.url + "/openapi.json").status_code == 200


async def test_authenticator_unit() -> None:
    auth = Authenticator([CLEAR, "sha256:" + hashlib.sha256(HASHED.encode()).hexdigest().upper()])
    assert (await auth.principal(f"Bearer {CLEAR}")).key_id == key_id(CLEAR)
    found = await auth.principal(f"bearer  {HASHED}")  # scheme is case-insensitive
    assert (found.key_id, found.workspace_id, found.role) == (key_id(HASHED), "default", "admin")
    with pytest.raises(InvalidApiKey):
        await auth.principal("Bearer sk-other")
    with pytest.raises(AuthenticationRequired):
        await auth.principal(None)
    assert await Authenticator([]).principal(None) == OPERATOR  # no keys: the operator
