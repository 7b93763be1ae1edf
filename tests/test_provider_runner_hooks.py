"""The runner's hooks the queue providers (fal, Replicate, BFL) need, on a made-up provider
("hooky") against fake servers on 127.0.0.1, driven through the gateway over HTTP: a model's
own batch size, an input prepared once per request by the spec (an upload, reused by a retry),
a second host of the entry (``origins``), a broken poll answer polled again, and an off-host
URL named in the failure (``Wire.what``)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from fakes.core import Recorder, Reply
from imagekit import png, solid
from live import EDITS, GEN, live_gateway, post

from imagegate.config import ProviderConfig
from imagegate.providers import registry
from imagegate.providers.base import Capabilities
from imagegate.providers.core import inputs
from imagegate.providers.core.call import Answer, Call, Job, Send, Wire
from imagegate.providers.core.failures import no_image
from imagegate.providers.core.spec import (
    Auth,
    Calls,
    Inputs,
    Keys,
    Models,
    ModelSpec,
    Polling,
    ProviderSpec,
)
from imagegate.request import GeneratedImage, ImageResult, Operation

BOTH: frozenset[Operation] = frozenset({"generations", "edits"})
MODELS = {
    "one": ModelSpec(Capabilities(max_n=4)),  # the spec's batch: one image per job
    "pair": ModelSpec(Capabilities(max_n=4), batch=2),  # two images per job
    "edit": ModelSpec(Capabilities(operations=BOTH, max_n=4)),
}


def build(call: Call[ModelSpec]) -> Wire:
    body = {"prompt": call.request.prompt, "seed": call.seed, "n": call.count}
    return Wire("/jobs", json={**body, "ref": call.images[0] if call.images else None})


async def prepare(call: Call[ModelSpec], send: Send) -> None:
    """Edits: the image goes by reference, uploaded once per request (kept on the upload)."""
    if call.request.operation != "edits":
        return
    image = call.request.images[0]
    ref = inputs.remembered(image, "hooky_ref")
    if inputs.is_missing(ref):
        answer = await send(Wire("/upload", fields=[], files=[("file", image)]))
        ref = answer.doc()["ref"]
        inputs.remember(image, "hooky_ref", ref)
    call.images = [ref]


def submitted(call: Call[Any], answer: Answer) -> Job:
    return Job(poll=Wire(answer.doc()["poll"], "GET", what="the job's poll URL"))


def finished(answer: Answer) -> bool:
    return bool(answer.doc().get("status") != "running")


def parse(call: Call[ModelSpec], answer: Answer) -> ImageResult:
    images = [GeneratedImage(b64=b) for b in answer.doc().get("images", [])]
    if not images:
        raise no_image(call.provider)
    return ImageResult(images=images)


def setup(config: ProviderConfig) -> dict[str, Any]:
    return {"poll_host": config.option("poll_host")}


SPEC = ProviderSpec(
    type="hooky",
    calls=Calls(build, parse),
    auth=Auth("query", name="key"),
    origins=lambda settings: [settings["poll_host"]] if settings["poll_host"] else [],
    models=Models(MODELS),
    inputs=Inputs(prepare=prepare),
    batch=1,
    polling=Polling(submitted=submitted, finished=finished),
    keys=Keys(optional=frozenset({"poll_host"}), credentials=("api_key",)),
    setup=setup,
)


class FakeHooky(Recorder):
    """``POST /upload`` → ``{ref}``; ``POST /jobs`` → ``{poll}`` (on ``poll_base``);
    ``GET /jobs/{id}`` answers ``running`` (or, with ``garbage``, a non-JSON page) once, then
    the images. ``jobs`` may be shared with a second server that serves the polls."""

    def __init__(self) -> None:
        super().__init__()
        self.poll_base: str | None = None
        self.garbage = False
        self.polls: dict[str, int] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads: list[bytes] = []
        self.app.router.add_post("/upload", self._upload)
        self.app.router.add_post("/jobs", self._submit)
        self.app.router.add_get("/jobs/{id}", self._poll)

    def providers(self, **extra: Any) -> dict[str, Any]:
        entry = {"type": "hooky", "api_key": "hk", "base_url": self.url, "poll_interval_s": 0.01}
        return {"hooky": {**entry, **extra}}

    def _keyed(self, request: web.Request) -> None:
        if request.query.get("key") != "hk":
            self.violations.append(f"{request.method} {request.path}: key {request.query!r}")

    async def _upload(self, request: web.Request) -> web.Response:
        self._keyed(request)
        form = await request.post()  # not recorded: ``uploads`` holds what arrived
        part = form.get("file")
        self.uploads.append(part.file.read() if isinstance(part, web.FileField) else b"")
        return web.json_response({"ref": f"ref-{len(self.uploads)}"})

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        seen = await self.record(request)
        self._keyed(request)
        scripted = self.scripted("submit")
        if scripted is not None:
            return await self.answer(request, seen, scripted)
        job = self.next_id()
        self.jobs[job] = self.expect_json(seen, self.violations)
        return web.json_response({"poll": f"{self.poll_base or self.url}/jobs/{job}"})

    async def _poll(self, request: web.Request) -> web.Response:
        await self.record(request)
        self._keyed(request)
        job = request.match_info["id"]
        self.polls[job] = self.polls.get(job, 0) + 1
        if self.polls[job] == 1 and self.garbage:
            return web.Response(text="<html>upstream hiccup</html>", content_type="text/html")
        if self.polls[job] == 1:
            return web.json_response({"status": "running"})
        doc = self.jobs[job]
        images = [base64.b64encode(png(f"{doc['seed']}")).decode()] * int(doc["n"])
        return web.json_response({"status": "done", "images": images})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHooky]:
    monkeypatch.setattr(registry, "ADAPTERS", dict(registry.ADAPTERS))
    monkeypatch.setattr(registry, "PROVIDER_KEYS", dict(registry.PROVIDER_KEYS))
    registry.register(SPEC)
    with FakeHooky() as server:
        yield server


def test_a_models_own_batch_size_wins_over_the_specs(fake: FakeHooky, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": "hooky/pair", "prompt": "p", "n": 3, "seed": 7})
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert {doc["n"]: doc["seed"] for doc in fake.jobs.values()} == {2: 7, 1: 8}
    assert len(r.json()["data"]) == 3


def test_prepare_uploads_once_for_every_call_and_retry(fake: FakeHooky, make_config: Any) -> None:
    image = solid(16, (1, 2, 3))
    fake.script(Reply(503, {"error": {"message": "busy"}}), key="submit")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={
                "model": "hooky/edit",
                "prompt": "p",
                "n": "2",
                "orq": '{"retry": {"count": 1, "on_codes": [503]}}',
            },
            files={"image": ("a.png", image, "image/png")},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-attempts"] == "2"
    assert fake.violations == []  # the upload carried the entry's key like any call
    assert fake.uploads == [image]  # one upload for the failed attempt, the retry and n=2
    assert len(fake.jobs) >= 2  # the retry's two jobs (and maybe the first attempt's other)
    assert {doc["ref"] for doc in fake.jobs.values()} == {"ref-1"}


def test_a_host_listed_by_origins_is_the_providers_own(fake: FakeHooky, make_config: Any) -> None:
    with FakeHooky() as poller:
        poller.jobs = fake.jobs
        fake.poll_base = poller.url
        providers = fake.providers(poll_host=poller.url)
        with live_gateway(make_config(providers=providers)) as gw:
            r = post(gw, GEN, json={"model": "hooky/one", "prompt": "p"})
        assert r.status_code == 200, r.text
        assert poller.violations == [] and fake.violations == []
        # running, then done: polled on the other host
        assert len(poller.received(method="GET")) == 2


def test_an_off_host_url_is_named_in_the_failure(fake: FakeHooky, make_config: Any) -> None:
    with FakeHooky() as elsewhere:
        fake.poll_base = elsewhere.url  # another port, not listed: not the provider's
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = post(gw, GEN, json={"model": "hooky/one", "prompt": "p"})
        assert elsewhere.requests == []
    assert r.status_code == 502, r.text
    message = r.json()["error"]["message"]
    assert "the job's poll URL is not on the provider's host" in message


def test_a_broken_poll_answer_is_polled_again(fake: FakeHooky, make_config: Any) -> None:
    fake.garbage = True
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": "hooky/one", "prompt": "p"})
    assert r.status_code == 200, r.text
    assert list(fake.polls.values()) == [2]  # the broken answer, then the finished one
    assert len(fake.received(method="POST")) == 1  # the job was not submitted again
