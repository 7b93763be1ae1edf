"""The generic runner (core/runner.py) on what no migrated provider uses yet: a queue
provider's submit → poll → result, the key as a query parameter, poll URLs off the provider's
host, a failed job, and the cancel of an abandoned one. A made-up provider ("queuey") against
a fake server on 127.0.0.1, driven through the gateway over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from fakes.core import Recorder
from imagekit import png
from live import GEN, live_gateway, post

from imagegate.providers import registry
from imagegate.providers.base import Capabilities
from imagegate.providers.core.call import Answer, Call, Job, Wire
from imagegate.providers.core.failures import job_failed, no_image
from imagegate.providers.core.spec import Auth, Calls, Models, ModelSpec, Polling, ProviderSpec
from imagegate.request import GeneratedImage, ImageResult


def build(call: Call[ModelSpec]) -> Wire:
    return Wire("/jobs", json={"prompt": call.request.prompt, "seed": call.seed, "n": call.count})


def submitted(call: Call[Any], answer: Answer) -> Job | None:
    doc = answer.doc()
    if doc.get("status") == "done":
        return None  # answered at once: nothing to poll
    return Job(poll=Wire(doc["poll"], method="GET"), cancel=Wire(doc["cancel"], method="DELETE"))


def finished(answer: Answer) -> bool:
    return bool(answer.doc().get("status") != "running")


def check(call: Call[Any], answer: Answer) -> None:
    if answer.doc().get("status") != "done":
        raise job_failed(call.provider, f"job ended as {answer.doc().get('status')}")


def parse(call: Call[ModelSpec], answer: Answer) -> ImageResult:
    images = [GeneratedImage(b64=b) for b in answer.doc().get("images", [])]
    if not images:
        raise no_image(call.provider)
    return ImageResult(images=images)


SPEC = ProviderSpec(
    type="queuey",
    calls=Calls(build, parse),
    auth=Auth("query", name="key"),
    models=Models({"q1": ModelSpec(Capabilities(max_n=4))}),
    batch=1,
    polling=Polling(submitted=submitted, finished=finished, check=check),
)


class FakeQueue(Recorder):
    """``POST /jobs`` → ``{id, poll, cancel}``; ``GET /jobs/{id}`` answers ``running`` once,
    then the outcome (``outcome``: done | failed | an HTTP status); ``DELETE`` cancels."""

    def __init__(self) -> None:
        super().__init__()
        self.outcome: str | int = "done"
        self.poll_base: str | None = None  # where poll URLs point (default: this server)
        self.polls: dict[str, int] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.app.router.add_post("/jobs", self._submit)
        self.app.router.add_get("/jobs/{id}", self._poll)
        self.app.router.add_delete("/jobs/{id}", self._cancel)

    def providers(self) -> dict[str, Any]:
        return {"queuey": {"api_key": "qk", "base_url": self.url, "poll_interval_s": 0.01}}

    def _keyed(self, request: web.Request) -> None:
        if request.query.get("key") != "qk":
            self.violations.append(f"{request.method} {request.path}: key {request.query!r}")

    async def _submit(self, request: web.Request) -> web.Response:
        received = await self.record(request)
        self._keyed(request)
        doc = self.expect_json(received, self.violations)
        job = self.next_id()
        self.jobs[job] = doc
        base = self.poll_base or self.url
        return web.json_response(
            {"id": job, "poll": f"{base}/jobs/{job}", "cancel": f"{self.url}/jobs/{job}"}
        )

    async def _poll(self, request: web.Request) -> web.Response:
        await self.record(request)
        self._keyed(request)
        job = request.match_info["id"]
        self.polls[job] = self.polls.get(job, 0) + 1
        if self.polls[job] == 1:
            return web.json_response({"status": "running"})
        if isinstance(self.outcome, int):
            return web.json_response({"error": {"message": "gone"}}, status=self.outcome)
        doc = self.jobs[job]
        images = [base64.b64encode(png(f"{doc['seed']}")).decode()] * int(doc["n"])
        return web.json_response({"status": self.outcome, "images": images})

    async def _cancel(self, request: web.Request) -> web.Response:
        await self.record(request)
        self._keyed(request)
        return web.json_response({"status": "cancelled"})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQueue]:
    monkeypatch.setattr(registry, "ADAPTERS", dict(registry.ADAPTERS))
    monkeypatch.setattr(registry, "PROVIDER_KEYS", dict(registry.PROVIDER_KEYS))
    registry.register(SPEC)
    with FakeQueue() as server:
        yield server


def test_jobs_are_polled_until_done_each_with_its_own_seed(
    fake: FakeQueue, make_config: Any
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "queuey/q1",
                "prompt": "a fox",
                "n": 2,
                "seed": 5,
                "response_format": "b64_json",
            },
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert len(r.json()["data"]) == 2
    assert sorted(doc["seed"] for doc in fake.jobs.values()) == [5, 6]
    assert sorted(fake.polls.values()) == [2, 2]  # running, then done
    assert fake.received(method="DELETE") == []


def test_a_failed_job_falls_back(fake: FakeQueue, make_config: Any) -> None:
    fake.outcome = "failed"
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "queuey/q1",
                "prompt": "p",
                "size": "32x32",
                "fallbacks": [{"model": "placeholder/x"}],
            },
        )
        alone = post(gw, GEN, json={"model": "queuey/q1", "prompt": "p"})
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert alone.status_code == 502, alone.text
    assert alone.json()["error"]["code"] == "provider_error"


def test_a_poll_url_off_the_providers_host_is_never_called(
    fake: FakeQueue, make_config: Any
) -> None:
    with FakeQueue() as elsewhere:
        fake.poll_base = elsewhere.url  # another port: not the provider's origin
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = post(gw, GEN, json={"model": "queuey/q1", "prompt": "p"})
        assert elsewhere.requests == []
    assert r.status_code >= 500, r.text
    assert fake.received(method="GET") == []


def test_an_abandoned_job_is_cancelled(fake: FakeQueue, make_config: Any) -> None:
    fake.outcome = 404  # the poll fails for good: the job is abandoned
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": "queuey/q1", "prompt": "p"})
        fake.wait_for(lambda: fake.received(method="DELETE"))  # the cancel runs in the background
    assert r.status_code == 404, r.text
    (job,) = fake.jobs
    assert [s.path for s in fake.received(method="DELETE")] == [f"/jobs/{job}"]
