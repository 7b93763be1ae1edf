"""The job API over real HTTP, one gateway in this process, on SQLite and PostgreSQL.

Upstream is ``jobkit.GatedOpenAI`` (OpenAI's wire format); a held answer waits on a gate the
test opens, so "the job is running" and "the upstream call was cancelled" are conditions the
test waits for, never durations.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import on_database
from fakes.replicate import FakeReplicate
from jobkit import MODEL, WHSEC, Client, GatedOpenAI, member_key, png
from live import LiveGateway
from waiting import wait_until

ADMIN = "sk-jobs-admin"
BODY = {"model": MODEL, "prompt": "a fox", "response_format": "b64_json"}


@pytest.fixture
def make_config(make_config: Any, database_url: str | None) -> Any:
    return on_database(make_config, database_url)


@pytest.fixture
def upstream() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as fake:
        yield fake


def gateway(make_config: Any, upstream: GatedOpenAI, **jobs: Any) -> LiveGateway:
    config = make_config(
        api_keys=[ADMIN],
        providers=upstream.providers(),
        jobs={"poll_interval_s": 0.05, **jobs},
        webhooks={"secrets": {"main": WHSEC}, "default_secret": "main"},
    )
    return LiveGateway(config)


def test_submit_answers_202_at_once_and_the_job_succeeds(
    make_config: Any, upstream: GatedOpenAI
) -> None:
    upstream.hold = True
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        r = api.submit(BODY)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["object"] == "image.job" and job["status"] == "queued"
        assert r.headers["location"] == f"/v2/jobs/{job['id']}"
        wait_until(lambda: api.job(job["id"])["status"] == "running", "the job runs")
        upstream.release()
        done = wait_until(lambda: api.finished(job["id"]), "the job ends")
    assert done["status"] == "succeeded" and done["http_status"] == 200, done
    assert base64.b64decode(done["result"]["data"][0]["b64_json"]) == png(0)
    assert done["result"]["usage"]["total_tokens"] == 30
    assert [r["outcome"] for r in done["runs"]] == ["succeeded"]
    assert done["trace_id"] == done["runs"][0]["trace_id"] and upstream.calls == 1


def test_the_answer_is_kept_by_blob_key_and_given_as_asked(
    make_config: Any, upstream: GatedOpenAI
) -> None:
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        job = api.submit({**BODY, "response_format": "url", "n": 2}).json()
        done = wait_until(lambda: api.finished(job["id"]), "the job ends")
        urls = [item["url"] for item in done["result"]["data"]]
        assert [httpx.get(u, timeout=10).content for u in urls] == [png(0), png(1)]
        trace = httpx.get(
            f"{gw.url}/v2/traces/{done['trace_id']}", headers=api.headers, timeout=10
        ).json()
    assert any(n.startswith(f"job {job['id']}: run 1") for n in trace["notes"]), trace["notes"]
    assert trace["status"] == 200


def test_a_failed_job_holds_orqs_error_body(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        job = api.submit({**BODY, "model": "nosuch/model"}).json()
        done = wait_until(lambda: api.finished(job["id"]), "the job ends")
    assert done["status"] == "failed" and done["result"] is None
    assert done["http_status"] >= 400
    assert set(done["error"]["error"]) >= {"message", "type", "param", "code"}


def test_an_edit_job_keeps_its_upload_until_it_ends(
    make_config: Any, upstream: GatedOpenAI, tmp_path: Path
) -> None:
    upstream.hold = True
    image = png(7)
    with gateway(make_config, upstream) as gw:
        api = Client(gw.url, ADMIN)
        r = httpx.post(
            f"{gw.url}/v2/jobs/images/edits",
            headers=api.headers,
            timeout=30,
            data={"model": MODEL, "prompt": "make it blue"},
            files={"image": ("in.png", image, "image/png")},
        )
        assert r.status_code == 202, r.text
        job = r.json()
        wait_until(lambda: upstream.calls == 1, "the edit reaches upstream")
        blobs = tmp_path / "blobs"
        kept = [p for p in blobs.rglob("*") if p.is_file() and image in p.read_bytes()]
        upstream.release()
        done = wait_until(lambda: api.finished(job["id"]), "the job ends")
        assert done["status"] == "succeeded", done
    assert upstream.files == [("image", image)]
    assert len(kept) == 1 or (blobs / "pack.db").exists()
    left = [p for p in blobs.rglob("*") if p.is_file() and p.name != "pack.db"]
    assert all(image not in p.read_bytes() for p in left)
    if (blobs / "pack.db").exists():
        import sqlite3

        with sqlite3.connect(blobs / "pack.db") as db:
            rows = [bytes(r[0]) for r in db.execute("SELECT data FROM blobs")]
        assert all(image not in data for data in rows)


def test_cancel_a_queued_job_and_a_running_one(make_config: Any, upstream: GatedOpenAI) -> None:
    upstream.hold = True
    with gateway(make_config, upstream, workers=1) as gw:
        api = Client(gw.url, ADMIN)
        running = api.submit(BODY).json()["id"]
        wait_until(lambda: upstream.calls == 1, "the first job reaches upstream")
        queued = api.submit(BODY).json()["id"]  # the one worker is busy: it waits
        assert api.job(queued)["status"] == "queued"
        r = api.cancel(queued)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = api.cancel(running)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        wait_until(lambda: upstream.cancelled == 1, "the upstream call is cancelled")
        again = api.cancel(running)
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
        assert api.job(running)["runs"][0]["outcome"] == "cancelled"
        upstream.release()
        follow = api.submit(BODY).json()["id"]  # the worker is free again
        assert wait_until(lambda: api.finished(follow))["status"] == "succeeded"
    assert upstream.calls == 2


def test_cancelling_a_polling_job_cancels_the_replicate_prediction(make_config: Any) -> None:
    """DELETE on a job whose provider polls (Replicate) cancels the upstream prediction: the
    cancelled run's poll loop fires ``POST urls.cancel``
    (https://replicate.com/docs/reference/http#predictions.cancel) and polls no more."""
    with FakeReplicate() as fake:
        fake.never_finish = True
        config = make_config(
            api_keys=[ADMIN],
            providers=fake.providers(),
            jobs={"poll_interval_s": 0.05, "lease_s": 600},
        )
        # a long lease: the cancel must reach the run at once, not at a lease renewal
        with LiveGateway(config) as gw:
            api = Client(gw.url, ADMIN)
            r = api.submit({"model": "replicate/black-forest-labs/flux-schnell", "prompt": "p"})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            wait_until(lambda: fake.polls() >= 2, "the job polls its prediction")
            cancelled = api.cancel(job_id)
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            wait_until(lambda: fake.cancels, "the prediction is cancelled upstream")
            polls = len(fake.received(method="GET", path="/predictions/pred-1"))
            assert api.job(job_id)["runs"][0]["outcome"] == "cancelled"
            # a barrier, not a sleep: a later job on the same gateway polls its own prediction
            # twice; a poll loop that survived the cancel would have polled pred-1 meanwhile
            fake.never_finish, fake.running_polls = False, 2
            later = api.submit({"model": "replicate/black-forest-labs/flux-schnell", "prompt": "q"})
            assert wait_until(lambda: api.finished(later.json()["id"]))["status"] == "succeeded"
            assert len(fake.received(method="GET", path="/predictions/pred-1")) == polls
    assert fake.cancels == ["pred-1"] and fake.violations == []


def test_jobs_are_private_to_their_workspace(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream) as gw:
        alice = Client(gw.url, member_key(gw.url, ADMIN, "alice"))
        bob = Client(gw.url, member_key(gw.url, ADMIN, "bob"))
        job = alice.submit(BODY).json()["id"]
        assert wait_until(lambda: alice.finished(job))["status"] == "succeeded"
        assert bob.get(job).status_code == 404
        assert bob.cancel(job).status_code == 404
        assert bob.get(job).json()["error"]["code"] == "not_found"
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=bob.headers, timeout=10).json()
        assert listed["data"] == []
        mine = httpx.get(f"{gw.url}/v2/jobs", headers=alice.headers, timeout=10).json()
        assert [j["id"] for j in mine["data"]] == [job]


def test_a_full_queue_answers_429(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream, workers=0, max_queued_per_workspace=2) as gw:
        api = Client(gw.url, ADMIN)
        assert [api.submit(BODY).status_code for _ in range(2)] == [202, 202]
        r = api.submit(BODY)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        other = Client(gw.url, member_key(gw.url, ADMIN, "other"))
        assert other.submit(BODY).status_code == 202  # a queue per workspace
    assert upstream.calls == 0


def test_list_filters_by_status_and_pages(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream, workers=0) as gw:
        api = Client(gw.url, ADMIN)
        ids = [api.submit(BODY).json()["id"] for _ in range(5)]
        api.cancel(ids[0])

        def page(**q: Any) -> dict[str, Any]:
            r = httpx.get(f"{gw.url}/v2/jobs", params=q, headers=api.headers, timeout=10)
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

        first = page(limit=2, status="queued")
        second = page(limit=2, status="queued", after=first["next_cursor"])
        assert [j["id"] for j in first["data"] + second["data"]] == ids[:0:-1]
        assert second["has_more"] is False
        assert [j["id"] for j in page(status="cancelled")["data"]] == [ids[0]]
        for bad in ({"limit": "0"}, {"limit": "101"}, {"status": "done"}, {"limit": "١"}):
            r = httpx.get(f"{gw.url}/v2/jobs", params=bad, headers=api.headers, timeout=10)
            assert r.status_code == 400 and r.json()["error"]["param"] in bad


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "prompt"),
        ({**BODY, "n": 99}, "n"),
        ({**BODY, "stream": True}, "stream"),
        ({**BODY, "orq": {"webhook": "http://x"}}, "orq.webhook"),
        ({**BODY, "orq": {"webhook": {"url": "ftp://example.com/h"}}}, "orq.webhook.url"),
        ({**BODY, "orq": {"webhook": {"url": "http://u:p@example.com/h"}}}, "orq.webhook.url"),
        ({**BODY, "orq": {"webhook": {"url": "https://e.com/" + "a" * 3000}}}, "orq.webhook.url"),
        (
            {**BODY, "orq": {"webhook": {"url": "https://e.com/h", "secret_id": "nope"}}},
            "orq.webhook.secret_id",
        ),
        ({**BODY, "orq": {"webhook": {"url": "http://169.254.169.254/latest"}}}, "orq.webhook.url"),
        ({**BODY, "orq": {"webhook": {"url": "http://127.0.0.1:9/hook"}}}, "orq.webhook.url"),
        ({**BODY, "orq": {"webhook": {"url": "http://[::1]:9/hook"}}}, "orq.webhook.url"),
        ({**BODY, "orq": {"webhook": {"url": "http://localhost:9/hook"}}}, "orq.webhook.url"),
    ],
)
def test_a_bad_body_or_webhook_is_a_400_at_submit(
    make_config: Any, upstream: GatedOpenAI, body: dict[str, Any], param: str
) -> None:
    with gateway(make_config, upstream, workers=0) as gw:
        api = Client(gw.url, ADMIN)
        r = api.submit(body)
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=api.headers, timeout=10).json()
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.json()
    assert listed["data"] == []


def test_hostile_ids_and_callers(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream, workers=0) as gw:
        api = Client(gw.url, ADMIN)
        for job_id in ("nope", "x" * 300, "job_%00", "job_\u202e"):
            assert api.get(job_id).status_code == 404
            assert api.cancel(job_id).status_code == 404
        assert Client(gw.url).submit(BODY).status_code == 401
        assert Client(gw.url, "sk-wrong").get("job_x").status_code == 401
        r = httpx.post(
            f"{gw.url}/v2/jobs/images/generations",
            content=b"{not json",
            headers={**api.headers, "content-type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "body"


def test_an_upload_over_the_pixel_cap_is_refused_at_submit(
    make_config: Any, upstream: GatedOpenAI, tmp_path: Path
) -> None:
    config = make_config(
        api_keys=[ADMIN], providers=upstream.providers(), limits={"max_image_pixels": 16}
    )
    with LiveGateway(config) as gw:
        api = Client(gw.url, ADMIN)
        r = httpx.post(
            f"{gw.url}/v2/jobs/images/edits",
            headers=api.headers,
            timeout=30,
            data={"model": MODEL, "prompt": "p"},
            files={"image": ("in.png", png(1), "image/png")},
        )
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=api.headers, timeout=10).json()
    assert r.status_code in (400, 413) and r.json()["error"]["param"] == "image", r.text
    assert listed["data"] == [] and upstream.calls == 0
    assert not [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]


def test_openapi_describes_the_job_routes(make_config: Any, upstream: GatedOpenAI) -> None:
    with gateway(make_config, upstream, workers=0) as gw:
        spec = httpx.get(f"{gw.url}/openapi.json", timeout=10).json()
    for op in ("generations", "edits", "variations"):
        post = spec["paths"][f"/v2/jobs/images/{op}"]["post"]
        assert post["responses"]["202"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Job"
        }
        assert "429" in post["responses"]
    assert set(spec["paths"]["/v2/jobs/{job_id}"]) == {"get", "delete"}
    assert "Job" in spec["components"]["schemas"]
