"""``Idempotency-Key`` on job submissions over real HTTP, on SQLite and PostgreSQL (records
in the store) and once with the records in Redis: the same key and body are the same job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from databases import on_database
from jobkit import MODEL, WHSEC, Client, GatedOpenAI, member_key
from live import LiveGateway
from waiting import wait_until

ADMIN = "sk-jobs-idem"
BODY = {"model": MODEL, "prompt": "a fox", "response_format": "b64_json"}
REPLAYED = "idempotent-replayed"


@pytest.fixture
def make_config(make_config: Any, database_url: str | None) -> Any:
    return on_database(make_config, database_url)


@pytest.fixture
def upstream() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as fake:
        yield fake


def gateway(make_config: Any, upstream: GatedOpenAI, **extra: Any) -> LiveGateway:
    jobs = {"poll_interval_s": 0.05, **extra.pop("jobs", {})}
    config = make_config(
        api_keys=[ADMIN],
        providers=upstream.providers(),
        jobs=jobs,
        webhooks={"secrets": {"main": WHSEC}, "default_secret": "main"},
        **extra,
    )
    return LiveGateway(config)


def keyed(api: Client, key: str, body: dict[str, Any], op: str = "generations") -> httpx.Response:
    return httpx.post(
        f"{api.url}/v2/jobs/images/{op}",
        json=body,
        timeout=30,
        headers={**api.headers, "Idempotency-Key": key},
    )


def test_the_same_key_and_body_answer_the_same_job(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        first = keyed(api, "order-1", BODY)
        again = keyed(api, "order-1", BODY)
        assert first.status_code == again.status_code == 202, (first.text, again.text)
        assert REPLAYED not in first.headers and again.headers[REPLAYED] == "true"
        assert again.content == first.content  # the very answer, byte for byte
        job_id = first.json()["id"]
        assert again.headers["location"] == first.headers["location"] == f"/v2/jobs/{job_id}"
        done = wait_until(lambda: api.finished(job_id), "the job ends")
        later = keyed(api, "order-1", BODY)  # after it ran: still the same job, not a new one
        assert later.status_code == 202 and later.json()["id"] == job_id
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=api.headers, timeout=10).json()
    assert done["status"] == "succeeded" and upstream.calls == 1
    assert [j["id"] for j in listed["data"]] == [job_id]


def test_concurrent_submissions_with_one_key_queue_one_job(
    make_config: Any, upstream: GatedOpenAI
) -> None:
    with gateway(make_config, upstream, jobs={"workers": 0}) as gw:
        api = Client(gw.url, ADMIN)
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: keyed(api, "burst", BODY), range(6)))
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=api.headers, timeout=10).json()
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len([a for a in answers if REPLAYED not in a.headers]) == 1  # one ran, five replayed
    assert len(listed["data"]) == 1


def test_a_key_reused_with_another_body_or_route_is_a_422(
    make_config: Any, upstream: GatedOpenAI
) -> None:
    with gateway(make_config, upstream, jobs={"workers": 0}) as gw:
        api = Client(gw.url, ADMIN)
        assert keyed(api, "k1", BODY).status_code == 202
        hooked = {**BODY, "orq": {"webhook": {"url": "https://example.com/hook"}}}
        for other in ({**BODY, "prompt": "a cat"}, {**BODY, "n": 2}, hooked):
            r = keyed(api, "k1", other)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "idempotency_key_reused"
            assert r.json()["error"]["param"] == "Idempotency-Key"
        sync = httpx.post(
            f"{gw.url}/v2/router/images/generations",
            json=BODY,
            timeout=30,
            headers={**api.headers, "Idempotency-Key": "k1"},
        )
        assert sync.status_code == 422, sync.text  # a job's key is not a synchronous call's
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=api.headers, timeout=10).json()
    assert len(listed["data"]) == 1 and upstream.calls == 0


def test_keys_are_scoped_per_workspace(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream, jobs={"workers": 0}) as gw:
        alice = Client(gw.url, member_key(gw.url, ADMIN, "alice"))
        bob = Client(gw.url, member_key(gw.url, ADMIN, "bob"))
        a, b = keyed(alice, "same", BODY), keyed(bob, "same", BODY)
        assert a.status_code == b.status_code == 202
        assert REPLAYED not in a.headers and REPLAYED not in b.headers
        assert a.json()["id"] != b.json()["id"]
        assert bob.get(a.json()["id"]).status_code == 404


def test_client_errors_are_kept_a_full_queue_is_not(
    make_config: Any, upstream: GatedOpenAI
) -> None:
    with gateway(make_config, upstream, jobs={"workers": 0, "max_queued_per_workspace": 1}) as gw:
        api = Client(gw.url, ADMIN)
        bad = {**BODY, "orq": {"webhook": {"url": "ftp://example.com/hook"}}}
        first, again = keyed(api, "bad", bad), keyed(api, "bad", bad)
        assert first.status_code == again.status_code == 400
        assert again.headers[REPLAYED] == "true" and again.content == first.content
        blocker = api.submit(BODY).json()["id"]
        full = keyed(api, "busy", BODY)
        assert full.status_code == 429, full.text
        assert api.cancel(blocker).status_code == 200
        retried = keyed(api, "busy", BODY)  # the 429 was not kept: this retry queues the job
        assert retried.status_code == 202 and REPLAYED not in retried.headers
        for key in ("", "x" * 256, "tab\there"):
            r = httpx.post(
                f"{gw.url}/v2/jobs/images/generations",
                json=BODY,
                timeout=30,
                headers={**api.headers, "Idempotency-Key": key},
            )
            assert r.status_code == 400 and r.json()["error"]["param"] == "Idempotency-Key"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_records_in_redis(make_config: Any, upstream: GatedOpenAI) -> None:
    prefix = f"imagegate:test-jobs-idem:{uuid.uuid4().hex[:8]}:"
    with gateway(
        make_config,
        upstream,
        jobs={"workers": 0},
        redis_url="redis://127.0.0.1:6379/0",
        idempotency={"prefix": prefix},
    ) as gw:
        api = Client(gw.url, ADMIN)
        first, again = keyed(api, "r1", BODY), keyed(api, "r1", BODY)
        assert first.status_code == again.status_code == 202
        assert again.headers[REPLAYED] == "true" and again.json()["id"] == first.json()["id"]
        assert keyed(api, "r1", {**BODY, "prompt": "x"}).status_code == 422
