"""OpenAI's optional image parameters on every provider, over real HTTP: each fake sees what its
provider takes (as is or translated, never a field it lacks: the fakes record violations), and
the trace of the request notes each parameter left out or translated. The per-provider table in
docs/openai-compatibility.md is checked against the adapters' declarations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.azure import FakeAzure
from fakes.bedrock import FakeBedrock
from fakes.bfl import FakeBFL
from fakes.core import Recorder
from fakes.fal import FakeFal
from fakes.google import FakeGoogle
from fakes.recraft import FakeRecraft
from fakes.replicate import FakeReplicate
from fakes.stability import FakeStability
from fakes.together import FakeTogether
from fakes.vertex import FakeVertex
from fakes.xai import FakeXAI
from live import LiveGateway, live_gateway
from waiting import wait_until

from imagegate.config import load_config
from imagegate.providers import placeholder
from imagegate.providers.core import params
from imagegate.providers.core.spec import ProviderSpec
from imagegate.providers.registry import SPECS, _target

KEY = "sk-params-test"
AUTH = {"authorization": f"Bearer {KEY}"}
# what an OpenAI client may send that most providers have no word for
ASKED = {"quality": "hd", "style": "vivid", "background": "transparent", "user": "u1"}
DOC = Path(__file__).resolve().parent.parent / "docs" / "openai-compatibility.md"


class Fakes:
    def __init__(self, stack: ExitStack) -> None:
        self.xai: FakeXAI = stack.enter_context(FakeXAI())
        self.together: FakeTogether = stack.enter_context(FakeTogether())
        self.recraft: FakeRecraft = stack.enter_context(FakeRecraft())
        self.stability: FakeStability = stack.enter_context(FakeStability())
        self.fal: FakeFal = stack.enter_context(FakeFal())
        self.replicate: FakeReplicate = stack.enter_context(FakeReplicate())
        self.bfl: FakeBFL = stack.enter_context(FakeBFL())
        self.google: FakeGoogle = stack.enter_context(FakeGoogle())
        self.vertex: FakeVertex = stack.enter_context(FakeVertex())
        self.bedrock: FakeBedrock = stack.enter_context(FakeBedrock())
        self.azure: FakeAzure = stack.enter_context(FakeAzure())

    def all(self) -> list[Recorder]:
        return [v for v in vars(self).values() if isinstance(v, Recorder)]

    def providers(self) -> dict[str, Any]:
        return {
            **self.xai.providers(),
            **self.together.providers(),
            **self.recraft.providers(),
            **self.stability.providers(),
            **self.fal.providers(),
            **self.replicate.providers(),
            **self.bfl.providers(),
            **self.google.providers(),
            **self.bedrock.providers(),
            **self.azure.providers(),
            **self.vertex.providers(access_token=self.vertex.token),
        }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fakes, LiveGateway]]:
    """Every provider's fake behind one gateway, for the module."""
    tmp = tmp_path_factory.mktemp("params")
    with ExitStack() as stack:
        fakes = Fakes(stack)
        config = load_config(
            env={},
            overrides={
                "data_dir": str(tmp),
                "storage": {"path": str(tmp / "blobs")},
                "api_keys": [KEY],
                "providers": fakes.providers(),
            },
        )
        yield fakes, stack.enter_context(live_gateway(config))


@pytest.fixture
def fakes(servers: tuple[Fakes, LiveGateway]) -> Iterator[Fakes]:
    """The fakes, reset; none may have seen a breach of its wire format by the end."""
    for fake in servers[0].all():
        fake.reset()
    yield servers[0]
    for fake in servers[0].all():
        assert fake.violations == [], (type(fake).__name__, fake.violations)


@pytest.fixture
def gw(servers: tuple[Fakes, LiveGateway], fakes: Fakes) -> LiveGateway:
    return servers[1]


def generate(gw: LiveGateway, model: str, **body: Any) -> list[str]:
    """Ask ``model`` for an image over ``/v1`` (OpenAI's routes); its trace's notes."""
    doc = {"model": model, "prompt": f"params {model}", **body}
    r = httpx.post(f"{gw.url}/v1/images/generations", json=doc, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return trace_notes(gw, r.headers["x-orq-trace-id"])


def trace_notes(gw: LiveGateway, trace_id: str) -> list[str]:
    r = httpx.get(f"{gw.url}/v2/traces/{trace_id}", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    found: list[str] = r.json()["notes"]
    return found


def ignored(model: str, *names: str, asked: dict[str, Any] = ASKED) -> list[str]:
    return [f"params: {n}={asked[n]!r} ignored: {model} does not take it" for n in names]


def param_notes(notes: list[str]) -> list[str]:
    return sorted(n for n in notes if n.startswith("params: "))


# --- each provider family through the gateway ----------------------------------------------
def test_xai_passes_user_and_notes_the_rest(fakes: Fakes, gw: LiveGateway) -> None:
    notes = generate(gw, "xai/grok-2-image", **ASKED)
    [sent] = fakes.xai.requests
    assert sent.json["user"] == "u1"
    assert not {"quality", "style", "background"} & set(sent.json)
    assert param_notes(notes) == sorted(ignored("grok-2-image", "quality", "style", "background"))


@pytest.mark.parametrize(
    ("model", "fake_name"),
    [
        ("together/black-forest-labs/FLUX.1-schnell", "together"),
        ("recraft/recraftv3", "recraft"),
        ("stability/stable-image-core", "stability"),
        ("fal/fal-ai/flux/dev", "fal"),
        ("bfl/flux-pro-1.1", "bfl"),
        ("google/gemini-2.5-flash-image", "google"),
    ],
)
def test_providers_without_equivalents_note_every_parameter(
    fakes: Fakes, gw: LiveGateway, model: str, fake_name: str
) -> None:
    notes = generate(gw, model, **ASKED)
    fake: Recorder = getattr(fakes, fake_name)
    sent = [r.values for r in fake.requests if r.values]
    assert sent, f"{fake_name} saw no request with a body"
    for body in sent:  # e.g. Recraft's ``style`` is its own, sent only from config
        assert not set(ASKED) & set(body.get("input", body)), body
    model_id = model.split("/", 1)[1]
    assert param_notes(notes) == sorted(ignored(model_id, *ASKED))


def test_replicate_translates_output_compression_where_the_model_has_it(
    fakes: Fakes, gw: LiveGateway
) -> None:
    extra = {"output_format": "jpeg", "output_compression": 70}
    schnell = generate(gw, "replicate/black-forest-labs/flux-schnell", **ASKED, **extra)
    kontext = generate(gw, "replicate/black-forest-labs/flux-kontext-pro", **ASKED, **extra)
    first, second = (r.json["input"] for r in fakes.replicate.received(method="POST"))
    assert (first["output_quality"], first["output_format"]) == (70, "jpg")
    assert "output_quality" not in second and not set(ASKED) & (set(first) | set(second))
    model = "black-forest-labs/flux-schnell"
    assert param_notes(schnell) == sorted(
        [
            *ignored(model, *ASKED),
            f"params: output_compression=70 sent to {model} as output_quality=70",
        ]
    )
    asked = {**ASKED, **extra}
    assert param_notes(kontext) == sorted(
        ignored("black-forest-labs/flux-kontext-pro", *ASKED, "output_compression", asked=asked)
    )


@pytest.mark.parametrize("provider", ["google", "vertex"])
def test_imagen_takes_output_compression_with_jpeg_only(
    fakes: Fakes, gw: LiveGateway, provider: str
) -> None:
    model = "imagen-4.0-generate-001"
    jpeg = generate(gw, f"{provider}/{model}", **ASKED, output_format="jpeg", output_compression=60)
    png = generate(gw, f"{provider}/{model}", output_format="png", output_compression=60)
    fake: Recorder = getattr(fakes, provider)
    first, second = (r.json["parameters"] for r in fake.requests if r.json)
    assert first["outputOptions"] == {"mimeType": "image/jpeg", "compressionQuality": 60}
    assert second["outputOptions"] == {"mimeType": "image/png"}
    assert param_notes(jpeg) == sorted(
        [
            *ignored(model, *ASKED),
            f"params: output_compression=60 sent to {model} as outputOptions.compressionQuality=60",
        ]
    )
    assert param_notes(png) == [
        f"params: output_compression=60 ignored: {model} takes it only with output_format='jpeg'"
    ]


def test_bedrock_translates_quality_on_titan_and_nova_only(fakes: Fakes, gw: LiveGateway) -> None:
    titan, nova, sd = (
        "amazon.titan-image-generator-v2:0",
        "amazon.nova-canvas-v1:0",
        "stability.sd3-5-large-v1:0",
    )
    on_titan = generate(gw, f"bedrock/{titan}", **ASKED)
    on_nova = generate(gw, f"bedrock/{nova}", quality="auto", user="u1")
    on_sd = generate(gw, f"bedrock/{sd}", **ASKED)
    titan_body, nova_body, sd_body = fakes.bedrock.bodies()
    assert titan_body["imageGenerationConfig"]["quality"] == "premium"
    assert "quality" not in nova_body["imageGenerationConfig"]
    assert not set(ASKED) & set(sd_body)
    assert param_notes(on_titan) == sorted(
        [
            *ignored(titan, "style", "background", "user"),
            f"params: quality='hd' sent to {titan} as 'premium'",
        ]
    )
    assert param_notes(on_nova) == [
        f"params: quality='auto' ignored: {nova} does not take it",
        f"params: user='u1' ignored: {nova} does not take it",
    ]
    assert param_notes(on_sd) == sorted(ignored(sd, *ASKED))


def test_azure_follows_openais_rules(fakes: Fakes, gw: LiveGateway) -> None:
    notes = generate(gw, "azure/gpt-image-1", **ASKED)
    [sent] = fakes.azure.requests
    assert {k: sent.json.get(k) for k in ASKED} == {
        "quality": "high",
        "style": None,
        "background": "transparent",
        "user": "u1",
    }
    assert param_notes(notes) == [
        "params: quality='hd' sent to gpt-image-1 as 'high'",
        "params: style='vivid' ignored: gpt-image-1 does not take it",
    ]


def test_placeholder_notes_what_it_does_not_render(gw: LiveGateway, fakes: Fakes) -> None:
    notes = generate(gw, "placeholder/sketch", **ASKED, output_format="jpeg", output_compression=40)
    assert param_notes(notes) == sorted(ignored("sketch", *ASKED))


def test_a_stream_from_a_provider_that_does_not_stream_notes_it(
    gw: LiveGateway, fakes: Fakes
) -> None:
    """``streamed.py`` notes like the JSON pipeline, and ``partial_images`` is noted too."""
    doc = {
        "model": "xai/grok-2-image",
        "prompt": "streamed params",
        "stream": True,
        "partial_images": 2,
        **ASKED,
    }
    with httpx.stream(
        "POST", f"{gw.url}/v1/images/generations", json=doc, headers=AUTH, timeout=30
    ) as r:
        body = r.read().decode()
        trace_id = r.headers["x-orq-trace-id"]
    assert r.status_code == 200 and "image_generation.completed" in body, body[:300]
    assert fakes.xai.requests[0].json["user"] == "u1"

    def noted() -> list[str]:  # the trace is written once the stream has ended
        r = httpx.get(f"{gw.url}/v2/traces/{trace_id}", headers=AUTH, timeout=10)
        return param_notes(r.json()["notes"]) if r.status_code == 200 else []

    assert wait_until(noted, "the stream's trace notes") == sorted(
        [
            *ignored("grok-2-image", "quality", "style", "background"),
            "params: partial_images=2 ignored: grok-2-image does not stream",
        ]
    )


# --- the docs' table and the adapters agree -------------------------------------------------
def doc_rows() -> list[tuple[list[str], dict[str, str]]]:
    """``### Per provider``'s table: each row's ``provider/model`` names and its cells."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Per provider", 1)[1].split("\n#", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip().strip("`") for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        models = re.findall(r"`([^`]+/[^`]+)`", cells[0])
        rows.append((models, dict(zip(header[1:], cells[1:], strict=True))))
    return rows


def declared(model: str) -> tuple[params.Params, bool]:
    """What the adapter serving ``provider/model`` declares, and whether it streams."""
    provider, _, model_id = model.partition("/")
    if provider == "placeholder":
        return placeholder.PARAMS, False
    spec: ProviderSpec[Any] = _target(SPECS[provider])
    entry = spec.models.entry(model_id)
    assert entry is not None and spec.models.notes is None, model
    return spec.models.rules(entry), spec.calls.stream is not None


def test_the_docs_table_says_what_each_adapter_declares() -> None:
    rows = doc_rows()
    covered = {m.split("/", 1)[0] for models, _ in rows for m in models}
    assert covered == set(SPECS) - {"openai", "openai-compatible", "azure"} | {"placeholder"}
    for models, cells in rows:
        assert models, cells
        for model in models:
            rules, streams = declared(model)
            for name in params.NOTED:
                said = cells[name]
                words = "left out" if said == "—" else re.split(r"[:(]", said)[0].strip()
                assert words == params.handling(rules, name), (model, name, said)
            assert cells["partial_images"] == ("relayed" if streams else "—"), model
