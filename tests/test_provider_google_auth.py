"""Vertex AI credentials through google-auth, end to end: the real google-auth code signs and
posts the grants to the fake Vertex's token endpoint (``token_uri`` in the key points at it),
and the gateway calls the fake Vertex with the token it got back. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.client import answered_images, error_of, generate
from fakes.vertex import FakeVertex
from live import live_gateway
from waiting import DEADLINE_S, until

from imagegate.config import Config, ProviderConfig
from imagegate.errors import UpstreamHTTPError
from imagegate.providers.google.tokens import NO_CREDENTIALS_RETRY_S, TokenSource

IMAGEN = "imagen-4.0-generate-001"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake(key: rsa.RSAPrivateKey) -> Any:
    with FakeVertex(public_key=key.public_key()) as server:
        yield server


def adc_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, info: dict[str, Any]) -> None:
    """Application Default Credentials from ``GOOGLE_APPLICATION_CREDENTIALS``."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))


def test_application_default_credentials_are_used_when_no_key_is_configured(
    fake: FakeVertex,
    key: rsa.RSAPrivateKey,
    make_config: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ADC's first source, ``GOOGLE_APPLICATION_CREDENTIALS``, naming a service-account key.
    (gcloud user credentials always refresh at Google's own endpoint, so no test reaches
    them; the metadata server's host is fixed when google-auth is imported.)"""
    adc_file(tmp_path, monkeypatch, fake.service_account(key))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox", response_format="b64_json")
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    assert fake.token_requests == 1
    assert fake.requests[0].headers["Authorization"] == f"Bearer {fake.token}"


def test_adc_names_the_project_when_the_entry_does_not(
    fake: FakeVertex, key: rsa.RSAPrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adc_file(tmp_path, monkeypatch, {**fake.service_account(key), "project_id": "proj-1"})
    config = Config.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "storage": {"path": str(tmp_path / "blobs")},
            "providers": {"vertex": {"region": "us-central1", "base_url": fake.url}},
        }
    )
    with live_gateway(config) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert fake.requests[0].path.startswith("/v1/projects/proj-1/locations/us-central1/")


def test_a_key_of_another_type_is_refused_by_name(fake: FakeVertex, make_config: Any) -> None:
    federated = {"type": "authorized_user", "refresh_token": "1//SECRET", "client_id": "c"}
    with live_gateway(make_config(providers=fake.providers(credentials=federated))) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
    assert r.status_code == 401, r.text
    assert "authorized_user" in error_of(r)["message"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" in error_of(r)["message"]
    assert "SECRET" not in r.text
    assert fake.token_arrivals == 0 and fake.requests == []


def test_a_broken_key_file_is_a_401_without_its_content(
    fake: FakeVertex, make_config: Any, tmp_path: Path
) -> None:
    path = tmp_path / "sa.json"
    path.write_text('{"type": "service_account", "private_key": "SECRET-PEM", "client_email": 1')
    with live_gateway(make_config(providers=fake.providers(credentials_file=str(path)))) as gw:
        r = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
    assert r.status_code == 401, r.text
    assert "SECRET" not in r.text
    assert fake.token_arrivals == 0


# --- the token source itself: refresh off the event loop, shared, ahead of expiry -----------


def source(fake: FakeVertex, key: rsa.RSAPrivateKey) -> TokenSource:
    return TokenSource(ProviderConfig(credentials=fake.service_account(key)))


async def test_concurrent_calls_share_one_refresh_run_off_the_loop(
    fake: FakeVertex, key: rsa.RSAPrivateKey
) -> None:
    fake.token_gate = threading.Event()  # the token endpoint holds its answer
    tokens = source(fake, key)
    calls = [asyncio.create_task(tokens.token()) for _ in range(5)]
    # this coroutine keeps running while the refresh waits on the network: the loop is free
    await until(lambda: fake.token_arrivals == 1, what="the token request")
    assert not any(call.done() for call in calls)
    fake.token_gate.set()
    assert await asyncio.gather(*calls) == [fake.token] * 5
    assert fake.token_requests == 1
    assert fake.violations == []


async def test_a_token_near_expiry_is_refreshed_while_still_in_use(
    fake: FakeVertex, key: rsa.RSAPrivateKey
) -> None:
    fake.lifetimes.extend([120, 3599])  # 2 minutes: usable, but inside the refresh window
    tokens = source(fake, key)
    first = await tokens.token()
    assert first == fake.token
    fake.token_gate = threading.Event()  # hold the second exchange
    assert await tokens.token() == first  # no wait: the old token is still good
    await until(lambda: fake.token_arrivals == 2, what="the refresh ahead of expiry")
    assert await tokens.token() == first  # the refresh in flight is not started again
    fake.token_gate.set()
    deadline = time.monotonic() + DEADLINE_S
    renewed = first
    while renewed == first and time.monotonic() < deadline:  # poll: the new token lands soon
        await asyncio.sleep(0.005)
        renewed = await tokens.token()
    assert renewed == fake.issued[1] != first
    assert fake.token_arrivals == 2
    assert fake.violations == []


async def test_a_failed_refresh_fails_every_waiting_call_and_the_next_one_retries(
    fake: FakeVertex,
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = TokenSource(ProviderConfig(credentials=fake.service_account(stranger)))
    results = await asyncio.gather(tokens.token(), tokens.token(), return_exceptions=True)
    assert [getattr(r, "status", None) for r in results] == [401, 401]
    assert results[0] is not results[1]  # each caller owns (and may rewrite) its error
    assert fake.token_arrivals == 1
    with pytest.raises(Exception, match="token refresh refused"):
        await tokens.token()
    assert fake.token_arrivals == 2


# --- no credentials at all, off Google Cloud: found out once, then remembered for a while ----


def off_google_cloud(fake: FakeVertex, monkeypatch: pytest.MonkeyPatch) -> None:
    """ADC's last resort, the metadata-server probe, switched back on (conftest turns it off)
    and pointed at the fake, which answers "not a metadata server" and counts the probes."""
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", False)  # read once, at import
    monkeypatch.setenv("GCE_METADATA_IP", fake.url.removeprefix("http://"))  # read per probe


def test_an_entry_without_credentials_answers_503_without_probing_each_time(
    fake: FakeVertex, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    off_google_cloud(fake, monkeypatch)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        first = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a fox")
        second = generate(gw.url, model=f"vertex/{IMAGEN}", prompt="a cat")
    for r in (first, second):
        assert r.status_code == 503, r.text
        assert error_of(r)["code"] == "provider_not_configured"
        assert "credentials" in error_of(r)["message"]
    assert fake.metadata_probes == 1  # the second request did not probe again
    assert fake.requests == [] and fake.violations == []


async def test_the_remembered_failure_expires(
    fake: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    off_google_cloud(fake, monkeypatch)
    now = [1000.0]
    tokens = TokenSource(ProviderConfig(), clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(UpstreamHTTPError) as info:
            await tokens.token()
        assert info.value.status == 503
    assert fake.metadata_probes == 1
    now[0] += NO_CREDENTIALS_RETRY_S + 1  # credentials may have been provided since
    with pytest.raises(UpstreamHTTPError):
        await tokens.token()
    assert fake.metadata_probes == 2
