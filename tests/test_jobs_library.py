"""``Gateway.submit`` and its job handle, without HTTP (the upstream is still a real server)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from jobkit import MODEL, GatedOpenAI, png

from imagegate import Gateway, GatewayError, UploadedFile
from imagegate.jobs.client import JobCancelled


@pytest.fixture
def upstream() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as fake:
        yield fake


def config(make_config: Any, upstream: GatedOpenAI) -> Any:
    return make_config(providers=upstream.providers(), jobs={"poll_interval_s": 0.05})


async def test_submit_then_result(make_config: Any, upstream: GatedOpenAI) -> None:
    async with Gateway(config(make_config, upstream)) as gw:
        job = await gw.submit(model=MODEL, prompt="a fox", response_format="b64_json")
        res = await job.result()
        status = await job.status()
    assert base64.b64decode(res.data[0]["b64_json"]) == png(0)
    assert res.model == MODEL and res.attempts == 1 and res.trace_id
    assert status.status == "succeeded" and job.id.startswith("job_")


async def test_an_edit_job_from_bytes(make_config: Any, upstream: GatedOpenAI) -> None:
    async with Gateway(config(make_config, upstream)) as gw:
        image = UploadedFile.from_bytes(png(3), "in.png")
        job = await gw.submit("edits", images=[image], model=MODEL, prompt="bluer")
        res = await job.result()
    assert res.data and upstream.files == [("image", png(3))]


async def test_a_failure_raises_the_error_the_call_would_have(
    make_config: Any, upstream: GatedOpenAI
) -> None:
    async with Gateway(config(make_config, upstream)) as gw:
        job = await gw.submit(model="nosuch/model", prompt="a fox")
        with pytest.raises(GatewayError) as caught:
            await job.result()
        try:
            await gw.generate(model="nosuch/model", prompt="a fox")
        except GatewayError as exc:
            direct = exc
    assert (caught.value.status, caught.value.code) == (direct.status, direct.code)


async def test_cancel_from_the_handle(make_config: Any, upstream: GatedOpenAI) -> None:
    upstream.hold = True
    async with Gateway(config(make_config, upstream)) as gw:
        job = await gw.submit(model=MODEL, prompt="a fox")
        cancelled = await job.cancel()
        with pytest.raises(JobCancelled):
            await job.result()
    assert cancelled is not None and cancelled.status == "cancelled"
