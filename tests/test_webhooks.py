"""Job webhooks over real HTTP: a receiver on 127.0.0.1 (``fetch.allow_private`` lets the
guard reach it) checks every message with the Standard Webhooks reference library."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from jobkit import MODEL, OTHER_WHSEC, WHSEC, Client, GatedOpenAI, Receiver, member_key, png
from live import LiveGateway
from standardwebhooks import Webhook
from waiting import wait_until

from imagegate.config import ConfigError, load_config
from imagegate.configshow import mask
from imagegate.webhooks.signing import sign

ADMIN = "sk-hooks-admin"
BODY = {"model": MODEL, "prompt": "a fox", "response_format": "b64_json"}


@pytest.fixture
def upstream() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def gateway(make_config: Any, upstream: GatedOpenAI, **webhooks: Any) -> LiveGateway:
    hooks = {
        "secrets": {"main": WHSEC, "bobs": {"secret": OTHER_WHSEC, "workspaces": ["bob"]}},
        "default_secret": "main",
        "backoff_base_s": 0.02,
        "backoff_max_s": 0.1,
        **webhooks,
    }
    config = make_config(
        api_keys=[ADMIN],
        providers=upstream.providers(),
        fetch={"allow_private": True},
        jobs={"poll_interval_s": 0.05},
        webhooks=hooks,
    )
    return LiveGateway(config)


def hooked(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {**BODY, "orq": {"webhook": {"url": receiver.url, **extra}}}


def delivered(api: Client, job_id: str) -> dict[str, Any] | None:
    job = api.job(job_id)
    return job if job["webhook"]["status"] in ("delivered", "failed") else None


def test_one_signed_message_per_job_that_the_reference_library_verifies(
    make_config: Any, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        ids = [api.submit(hooked(receiver)).json()["id"] for _ in range(3)]
        jobs = [wait_until(lambda i=i: delivered(api, i), "delivered") for i in ids]
        messages = {}
        for got in receiver.got:
            message = Webhook(WHSEC).verify(got.body, got.headers)
            messages[message["data"]["id"]] = (got, message)
        url = messages[ids[0]][1]["data"]["result"]["data"][0]["url"]
        fetched = httpx.get(url, timeout=10).content
    assert len(receiver.got) == 3 and sorted(messages) == sorted(ids)
    for job in jobs:
        got, message = messages[job["id"]]
        assert job["webhook"]["status"] == "delivered"
        assert got.headers["webhook-id"] == job["webhook"]["message_id"]
        assert [d["status_code"] for d in job["webhook"]["deliveries"]] == [200]
        assert message["type"] == "image.job.succeeded"
        assert message["data"]["status"] == "succeeded"
        items = message["data"]["result"]["data"]  # asked for base64: the message has URLs
        assert items and all(set(item) == {"url"} for item in items)
        assert got.headers["Content-Type"] == "application/json"
    assert fetched == png(0)


def test_redelivered_after_a_500_and_a_redirect_with_the_same_id(
    make_config: Any, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    receiver.statuses = [500, 302]
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        job_id = api.submit(hooked(receiver)).json()["id"]
        job = wait_until(lambda: delivered(api, job_id), "delivered")
    attempts = job["webhook"]["deliveries"]
    assert [a["status_code"] for a in attempts] == [500, 302, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert len(receiver.got) == 3
    assert {g.headers["webhook-id"] for g in receiver.got} == {job["webhook"]["message_id"]}
    for got in receiver.got:
        Webhook(WHSEC).verify(got.body, got.headers)


def test_given_up_after_max_age(
    make_config: Any, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    receiver.statuses = [503] * 1000
    with gateway(make_config, upstream, max_age_s=0.3) as gw:
        api = Client(gw.url, ADMIN)
        job_id = api.submit(hooked(receiver)).json()["id"]
        job = wait_until(lambda: delivered(api, job_id), "given up")
    assert job["webhook"]["status"] == "failed" and job["webhook"]["next_attempt_at"] is None
    assert len(job["webhook"]["deliveries"]) == len(receiver.got) >= 1
    assert all(d["status_code"] == 503 for d in job["webhook"]["deliveries"])


def test_failed_and_cancelled_jobs_send_their_message_too(
    make_config: Any, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        failed = api.submit({**hooked(receiver), "model": "nosuch/x"}).json()["id"]
        wait_until(lambda: delivered(api, failed), "delivered")
        upstream.hold = True
        cancelled = api.submit(hooked(receiver)).json()["id"]
        wait_until(lambda: upstream.calls == 1, "running")
        assert api.cancel(cancelled).status_code == 200
        wait_until(lambda: delivered(api, cancelled), "delivered")
    kinds = {}
    for got in receiver.got:
        message = Webhook(WHSEC).verify(got.body, got.headers)
        kinds[message["data"]["id"]] = message
    assert kinds[failed]["type"] == "image.job.failed"
    assert kinds[failed]["data"]["error"]["error"]["code"]
    assert kinds[cancelled]["type"] == "image.job.cancelled"
    assert len(receiver.got) == 2


def test_secrets_belong_to_their_workspaces(
    make_config: Any, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    with gateway(make_config, upstream) as gw:
        alice = Client(gw.url, member_key(gw.url, ADMIN, "alice"))
        bob = Client(gw.url, member_key(gw.url, ADMIN, "bob"))
        refused = alice.submit(hooked(receiver, secret_id="bobs"))
        job_id = bob.submit(hooked(receiver, secret_id="bobs")).json()["id"]
        wait_until(lambda: delivered(bob, job_id), "delivered")
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "orq.webhook.secret_id"
    assert Webhook(OTHER_WHSEC).verify(receiver.got[0].body, receiver.got[0].headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(WHSEC).verify(receiver.got[0].body, receiver.got[0].headers)


def test_a_secret_is_required_when_there_is_no_default(
    make_config: Any, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    with gateway(make_config, upstream, default_secret=None) as gw:
        r = Client(gw.url, ADMIN).submit(hooked(receiver))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "orq.webhook.secret_id"


def test_signatures_match_the_reference_implementation() -> None:
    body = orjson.dumps({"type": "image.job.succeeded", "data": {"id": "job_1", "s": "ü"}})
    ours = sign("msg_01ABC", 1_718_000_000, body, WHSEC)
    when = datetime.datetime.fromtimestamp(1_718_000_000, datetime.UTC)
    theirs = Webhook(WHSEC).sign("msg_01ABC", when, body.decode())
    assert ours["webhook-signature"] == theirs
    assert ours["webhook-id"] == "msg_01ABC" and ours["webhook-timestamp"] == "1718000000"


@pytest.mark.parametrize(
    "secret", ["whsec_", "nope", "whsec_" + base64.b64encode(b"short").decode(), "whsec_!!!"]
)
def test_a_bad_secret_is_a_config_error_naming_it(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"webhooks\.secrets\.main"):
        load_config(env={}, overrides={"webhooks": {"secrets": {"main": secret}}})


def test_config_show_masks_webhook_secrets() -> None:
    config = load_config(env={}, overrides={"webhooks": {"secrets": {"main": WHSEC}}})
    shown = mask(config.model_dump(mode="json"))
    assert shown["webhooks"]["secrets"]["main"]["secret"] == "***"
    assert WHSEC not in repr(shown)
