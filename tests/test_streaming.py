"""``stream: true``: the official openai SDK (sync and async) iterates partial then completed
image events through the gateway, over real HTTP, from a fake OpenAI that streams real SSE
(``fakes/openai_stream.py``). Nothing here waits on a clock: the fake holds its stream at an
event until the test releases it, and the trace is read once the request is over.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai_stream import FakeOpenAIStream, Script
from imagekit import png as tiny_png
from live import GEN, LiveGateway, live_gateway
from waiting import wait_until

from imagegate.config import load_config
from imagegate.gateway import Gateway
from imagegate.telemetry.trace import NullSink, TraceRecord

MAX_EVENT_BYTES = 256 * 1024  # limits.max_provider_response_bytes: the cap of one event
PNG = ("in.png", tiny_png(3), "image/png")


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FakeOpenAIStream, LiveGateway, NullSink]]:
    tmp = tmp_path_factory.mktemp("stream")
    with FakeOpenAIStream() as fake:
        config = load_config(
            env={},
            overrides={
                "data_dir": str(tmp),
                "storage": {"path": str(tmp / "blobs")},
                "api_keys": [KEY],
                "providers": fake.providers(),
                "limits": {"max_provider_response_bytes": MAX_EVENT_BYTES},
                "routing": {"backoff_base_s": 0.01},
            },
        )
        sink = NullSink()
        with live_gateway(config, Gateway(config, traces=sink)) as gw:
            yield fake, gw, sink


@pytest.fixture
def fake(servers: tuple[FakeOpenAIStream, LiveGateway, NullSink]) -> Iterator[FakeOpenAIStream]:
    fake = servers[0]
    fake.reset()
    yield fake
    fake.release()  # a failed test must not leave a stream held
    assert fake.violations == []


@pytest.fixture
def gw(servers: tuple[FakeOpenAIStream, LiveGateway, NullSink]) -> LiveGateway:
    return servers[1]


@pytest.fixture
def sink(servers: tuple[FakeOpenAIStream, LiveGateway, NullSink]) -> NullSink:
    return servers[2]


@pytest.fixture
def client(gw: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(gw: LiveGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


@pytest.fixture
def prompt(request: pytest.FixtureRequest) -> str:
    """Unique per test: the shared gateway's cache never answers for another test."""
    return f"a fox ({request.node.name})"


def trace_of(sink: NullSink, trace_id: str) -> TraceRecord:
    found: list[TraceRecord] = wait_until(
        lambda: [r for r in list(sink.records) if r.id == trace_id], f"trace {trace_id}"
    )
    return found[-1]


def png_of(b64: str) -> bytes:
    data = base64.b64decode(b64)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


# --- streaming providers: events relayed as they come ------------------------------------------


def test_generate_streams_partials_then_completed_before_upstream_finishes(
    fake: FakeOpenAIStream, client: openai.OpenAI, sink: NullSink, prompt: str
) -> None:
    fake.stream(Script(hold_at=1))  # the first partial, then nothing until released
    stream = client.images.generate(
        model="openai/gpt-image-1", prompt=prompt, stream=True, partial_images=2
    )
    events = iter(stream)
    first = next(events)
    # The first event is here while the upstream still holds the rest: nothing was buffered.
    assert not fake.finished.is_set() and fake.sent == ["image_generation.partial_image"]
    assert first.type == "image_generation.partial_image" and first.partial_image_index == 0
    assert png_of(first.b64_json) == tiny_png(10)
    fake.release()
    rest = list(events)
    assert [e.type for e in rest] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    done = rest[-1]
    assert done.type == "image_generation.completed"
    assert png_of(done.b64_json) == tiny_png(0) and done.usage.total_tokens == 30
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.response.headers["x-orq-model"] == "openai/gpt-image-1"
    [sent] = fake.requests
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": prompt,
        "stream": True,
        "partial_images": 2,
    }
    trace = trace_of(sink, stream.response.headers["x-orq-trace-id"])
    assert trace.status == 200 and trace.served_model == "openai/gpt-image-1"
    assert any("2 partial image(s) and 1 completed" in note for note in trace.notes)
    assert trace.usage is not None and trace.usage["total_tokens"] == 30
    assert trace.output_blobs and len(trace.output_blobs) == 1  # the completed image archived


async def test_async_generate_streams(
    fake: FakeOpenAIStream, aclient: openai.AsyncOpenAI, prompt: str
) -> None:
    fake.stream(Script(hold_at=1))
    stream = await aclient.images.generate(
        model="openai/gpt-image-1", prompt=prompt, stream=True, partial_images=1, n=1
    )
    events = stream.__aiter__()
    first = await events.__anext__()
    assert first.type == "image_generation.partial_image" and not fake.finished.is_set()
    fake.release()
    rest = [event async for event in events]
    assert [e.type for e in rest] == ["image_generation.completed"]
    assert png_of(rest[0].b64_json) == tiny_png(0)


def test_edit_streams_multipart(fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str) -> None:
    stream = client.images.edit(
        model="openai/gpt-image-1", prompt=prompt, image=PNG, stream=True, partial_images=1
    )
    types = [event.type for event in stream]
    assert types == ["image_edit.partial_image", "image_edit.completed"]
    [sent] = fake.requests
    assert sent.fields["stream"] == ["true"] and sent.fields["partial_images"] == ["1"]
    assert [f.data for f in sent.files] == [PNG[1]]


async def test_async_edit_streams(
    fake: FakeOpenAIStream, aclient: openai.AsyncOpenAI, prompt: str
) -> None:
    stream = await aclient.images.edit(
        model="openai/gpt-image-1", prompt=prompt, image=PNG, stream=True
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == ["image_edit.completed"]  # partial_images unset: none


def test_azure_gpt_image_streams(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    stream = client.images.generate(
        model="azure/gpt-image-1", prompt=prompt, stream=True, partial_images=1
    )
    assert [e.type for e in stream] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    [sent] = fake.requests
    assert sent.path == "/openai/deployments/gpt-image-1/images/generations"
    assert sent.json == {"prompt": prompt, "stream": True, "partial_images": 1}


def test_retry_before_the_first_event(
    fake: FakeOpenAIStream, client: openai.OpenAI, sink: NullSink, prompt: str
) -> None:
    fake.stream(Script(status=500), Script())
    stream = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        stream=True,
        partial_images=1,
        extra_body={"orq": {"retry": {"count": 2, "on_codes": [500]}}},
    )
    assert [e.type for e in stream] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert len(fake.requests) == 2 and stream.response.headers["x-orq-attempts"] == "2"
    trace = trace_of(sink, stream.response.headers["x-orq-trace-id"])
    assert [a["status"] for a in trace.attempts] == [500, 200]


def test_an_error_event_before_any_image_is_retried(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(error_at=0), Script())
    stream = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        stream=True,
        extra_body={"orq": {"retry": {"count": 1, "on_codes": [500]}}},
    )
    assert [e.type for e in stream] == ["image_generation.completed"]
    assert fake.sent == ["error", "image_generation.completed"]
    assert len(fake.requests) == 2


def test_never_more_images_than_asked(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(extra=2, hold_at=2))  # n=1 asked; the fake would send 3 images
    stream = client.images.generate(
        model="openai/gpt-image-1", prompt=prompt, stream=True, partial_images=1
    )
    assert [e.type for e in stream] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert fake.client_left.wait(20)  # dropped once the image asked for was in
    assert "image_generation.completed" not in fake.sent[2:]


def test_failure_before_any_event_is_a_json_error(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(status=503))
    with pytest.raises(openai.APIStatusError) as info:
        client.images.generate(model="openai/gpt-image-1", prompt=prompt, stream=True)
    assert info.value.status_code == 503


def test_error_event_after_the_first_event_never_retries(
    fake: FakeOpenAIStream, client: openai.OpenAI, sink: NullSink, prompt: str
) -> None:
    fake.stream(Script(drop_at=1), Script())  # a partial, then the connection drops
    stream = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        stream=True,
        partial_images=2,
        extra_body={
            "orq": {
                "retry": {"count": 3, "on_codes": [500, 502]},
                "fallbacks": [{"model": "placeholder/b"}],
            }
        },
    )
    events = iter(stream)
    assert next(events).type == "image_generation.partial_image"
    with pytest.raises(openai.APIError) as info:
        next(events)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "provider_error"
    assert len(fake.requests) == 1  # no second attempt, no fallback: never a second image
    trace = trace_of(sink, stream.response.headers["x-orq-trace-id"])
    assert trace.status == 502 and trace.error_code == "provider_error"
    assert any("ended by an error event after 1 partial" in note for note in trace.notes)


def test_an_oversize_event_ends_the_stream_with_an_error(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(big_at=1, big_bytes=2 * MAX_EVENT_BYTES))
    stream = client.images.generate(
        model="openai/gpt-image-1", prompt=prompt, stream=True, partial_images=2
    )
    events = iter(stream)
    assert next(events).type == "image_generation.partial_image"
    with pytest.raises(openai.APIError, match="over 262144 bytes"):
        next(events)


def test_an_endless_stream_is_cut_off(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(endless=True))
    stream = client.images.generate(
        model="openai/gpt-image-1", prompt=prompt, stream=True, partial_images=3
    )
    with pytest.raises(openai.APIError, match="more than 64 events"):
        for _ in stream:
            pass
    assert fake.client_left.wait(20)  # the gateway dropped the upstream connection


def test_a_stream_that_stalls_ends_at_the_attempt_timeout(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(hold_at=1))  # never released in this test
    stream = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        stream=True,
        partial_images=2,
        extra_body={"orq": {"timeout": {"call_timeout": 2000}}},  # the first event comes at once
    )
    events = iter(stream)
    assert next(events).type == "image_generation.partial_image"
    with pytest.raises(openai.APIError) as info:
        next(events)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "provider_timeout"
    assert fake.client_left.wait(20)


def test_client_leaving_mid_stream_stops_the_upstream(
    fake: FakeOpenAIStream, client: openai.OpenAI, sink: NullSink, prompt: str
) -> None:
    fake.stream(Script(hold_at=1))
    stream = client.images.generate(
        model="openai/gpt-image-1", prompt=prompt, stream=True, partial_images=2
    )
    assert next(iter(stream)).type == "image_generation.partial_image"
    trace_id = stream.response.headers["x-orq-trace-id"]
    stream.close()  # the client goes away while the upstream holds its next event
    assert fake.client_left.wait(20)  # the gateway dropped the upstream connection
    assert not fake.finished.is_set()
    trace = trace_of(sink, trace_id)
    assert trace.status == 499 and trace.error_code == "client_closed_request"


def test_client_leaving_before_the_first_event_stops_the_upstream(
    fake: FakeOpenAIStream, gw: LiveGateway, sink: NullSink, prompt: str
) -> None:
    fake.stream(Script(hold_at=0))  # nothing is sent until released
    body = json.dumps({"model": "openai/gpt-image-1", "prompt": prompt, "stream": True}).encode()
    head = (
        f"POST {GEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        wait_until(lambda: fake.requests, "the upstream call began")
    assert fake.client_left.wait(20) and fake.sent == []
    traces = wait_until(lambda: [r for r in list(sink.records) if r.prompt == prompt], "trace")
    assert (traces[0].status, traces[0].error_code) == (499, "client_closed_request")


def test_an_upstream_that_ignores_stream_still_streams(
    fake: FakeOpenAIStream, client: openai.OpenAI, prompt: str
) -> None:
    fake.stream(Script(whole=True))  # an OpenAI-compatible server answering JSON
    events = list(
        client.images.generate(
            model="openai/gpt-image-1",
            prompt=prompt,
            stream=True,
            n=2,
        )
    )
    assert [e.type for e in events] == ["image_generation.completed"] * 2
    assert [png_of(e.b64_json) for e in events] == [tiny_png(0), tiny_png(1)]


# --- providers that do not stream, the cache ---------------------------------------------------


def test_placeholder_answers_completed_events(
    fake: FakeOpenAIStream, client: openai.OpenAI, sink: NullSink, prompt: str
) -> None:
    stream = client.images.generate(
        model="placeholder/sketch",
        prompt=prompt,
        stream=True,
        partial_images=2,
        n=2,
        size="256x256",
    )
    events = list(stream)
    assert [e.type for e in events] == ["image_generation.completed"] * 2
    for event in events:
        png_of(event.b64_json)
        assert (event.size, event.output_format) == ("256x256", "png")
    assert fake.requests == []
    trace = trace_of(sink, stream.response.headers["x-orq-trace-id"])
    assert trace.status == 200 and len(trace.output_blobs) == 2
    assert any("0 partial image(s) and 2 completed" in note for note in trace.notes)


async def test_placeholder_edit_answers_a_completed_event(
    aclient: openai.AsyncOpenAI, prompt: str
) -> None:
    stream = await aclient.images.edit(
        model="placeholder/sketch", prompt=prompt, image=PNG, stream=True
    )
    assert [e.type async for e in stream] == ["image_edit.completed"]


def test_cache_hit_replays_as_a_stream(
    fake: FakeOpenAIStream, client: openai.OpenAI, sink: NullSink, prompt: str
) -> None:
    orq = {"orq": {"cache": {"type": "exact_match", "ttl": 60}}}
    first = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        stream=True,
        partial_images=1,
        extra_body=orq,
    )
    assert [e.type for e in first] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert first.response.headers["x-orq-cache"] == "MISS"
    trace_of(sink, first.response.headers["x-orq-trace-id"])  # stored by the time it is traced
    again = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        stream=True,
        partial_images=3,
        extra_body=orq,
    )
    events = list(again)
    assert [e.type for e in events] == ["image_generation.completed"]
    assert png_of(events[0].b64_json) == tiny_png(0)
    assert again.response.headers["x-orq-cache"] == "HIT" and len(fake.requests) == 1
