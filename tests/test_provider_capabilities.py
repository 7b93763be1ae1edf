"""Every declared provider's capabilities, checked against what the gateway does with them.

The cases are built at collection time from ``providers/registry.ADAPTERS``: every entry that
is a ``ProviderSpec`` (its model table, each model's ``Capabilities``) gets them, so a new or
newly migrated spec is covered without a line here.

- Every model of a spec's table, the names its ``match`` serves (``SAMPLES``: a table cannot
  list them) and a made-up name where it has a ``fallback`` are checked with the capabilities
  the gateway's own provider object reports for them.
- What a model does not declare is refused with a 400 naming the request field, before any
  upstream call: one gateway serves every spec type, each pointed at a catch-all fake that
  records whatever reaches it, and that fake must have seen nothing.
- An unknown model is refused, naming the models the provider knows.
- Where a fake speaking the provider's wire format exists (``FAKES``), what a model declares
  works: a generation in a declared format and size, with as many images as it declares, is
  served without a wire-format violation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web
from fakes.azure import FakeAzure
from fakes.bedrock import FakeBedrock
from fakes.bfl import FakeBFL
from fakes.client import answered_images, assert_unsent, edit, error_of, generate
from fakes.core import Recorder
from fakes.fal import FakeFal
from fakes.google import FakeGoogle
from fakes.openai import FakeOpenAI
from fakes.recraft import FakeRecraft
from fakes.replicate import FakeReplicate
from fakes.stability import FakeStability
from fakes.together import FakeTogether
from fakes.vertex import FakeVertex
from fakes.xai import FakeXAI
from imagekit import png
from live import LiveGateway, live_gateway

from imagegate.config import ProviderConfig, load_config
from imagegate.providers import registry
from imagegate.providers.base import Capabilities
from imagegate.providers.core.spec import ProviderSpec

FORMATS = ("png", "jpeg", "webp")
API_MAX_N = 10  # the API refuses more on its own (models.ImageCount)
API_MAX_IMAGES = 16  # more input images than any model takes
OFF_GRID = "4096x256"  # a size no model serves (ratio 16:1)


def _load(target: str | ProviderSpec[Any]) -> object:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


SPECS: dict[str, ProviderSpec[Any]] = {
    type_name: found
    for type_name, target in sorted(registry.ADAPTERS.items())
    if isinstance(found := _load(target), ProviderSpec)
}
# names only a spec's ``match`` serves, one per family it tells apart
SAMPLES: dict[str, tuple[str, ...]] = {
    "recraft": ("recraftv3", "recraftv4", "recraftv4-pro", "recraftv3_vector"),
    "xai": ("grok-imagine-image", "grok-2-image-1212"),
    "together": ("black-forest-labs/FLUX.1-schnell", "black-forest-labs/FLUX.1-kontext-pro"),
}
# served by a spec's ``fallback``, when it has one (fal and Replicate name models owner/name)
ANY_NAMES = {"fal": "acme/any-model-1", "replicate": "acme/any-model-1"}
UNKNOWN = "no-such-model-1"


def entry_for(type_name: str, base_url: str) -> dict[str, Any]:
    """A config entry of ``type_name`` at ``base_url``, with every key it requires set."""
    entry: dict[str, Any] = {"type": type_name, "base_url": base_url}
    keys = registry.PROVIDER_KEYS[type_name]
    for group in (*keys.required, keys.credentials):
        if group:
            entry.setdefault(group[0], f"test-{group[0]}")
    return entry


def models_of(type_name: str) -> dict[str, Capabilities]:
    """Each model name to check, with the capabilities the gateway's provider reports."""
    spec = SPECS[type_name]
    names = [*spec.models.table, *SAMPLES.get(type_name, ())]
    if spec.models.fallback is not None:
        names.append(ANY_NAMES.get(type_name, "any-model-1"))
    entry = ProviderConfig.model_validate(entry_for(type_name, "http://127.0.0.1:9"))
    provider = registry.load_adapter(type_name)(type_name, entry)
    return {name: provider.capabilities(name) for name in names}


MODELS = {type_name: models_of(type_name) for type_name in SPECS}


# --- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request a model must refuse: ``send(gateway_url, model)``, the field named."""

    type_name: str
    model: str
    what: str
    param: str
    send: Callable[[str, str], httpx.Response]

    @property
    def id(self) -> str:
        return f"{self.type_name}/{self.model}:{self.what}"


def _request(caps: Capabilities, gateway_url: str, model: str, **extra: Any) -> httpx.Response:
    """The plainest request the model otherwise serves (a generation, else an edit)."""
    if "generations" in caps.operations:
        return generate(gateway_url, model=model, prompt="p", **extra)
    return edit(gateway_url, [png()], model=model, prompt="p", **extra)


def _refusals(type_name: str, model: str, caps: Capabilities) -> Iterator[Case]:
    def case(what: str, param: str, send: Callable[[str, str], httpx.Response]) -> Case:
        return Case(type_name, model, what, param, send)

    if caps.refused is not None or not caps.operations:
        yield case("serves-nothing", "model", lambda url, m: generate(url, model=m, prompt="p"))
        return
    for fmt in (f for f in FORMATS if f not in caps.output_formats):
        yield case(
            f"format-{fmt}",
            "output_format",
            lambda url, m, f=fmt: _request(caps, url, m, output_format=f),
        )
    if caps.max_n < API_MAX_N:
        yield case("n-above-max", "n", lambda url, m: _request(caps, url, m, n=caps.max_n + 1))
    if caps.sizes is not None and OFF_GRID not in caps.sizes:
        yield case("size-off-table", "size", lambda url, m: _request(caps, url, m, size=OFF_GRID))
    if "edits" not in caps.operations:
        yield case("edit", "model", lambda url, m: edit(url, [png()], model=m, prompt="p"))
    if "variations" not in caps.operations:
        yield case(
            "variation", "model", lambda url, m: edit(url, [png()], operation="variations", model=m)
        )
    if "generations" not in caps.operations:
        yield case("generation", "model", lambda url, m: generate(url, model=m, prompt="p"))
    if "edits" in caps.operations and caps.max_images < API_MAX_IMAGES:
        images = [png(i) for i in range(caps.max_images + 1)]
        yield case(
            "too-many-images", "image", lambda url, m: edit(url, images, model=m, prompt="p")
        )
    if "edits" in caps.operations and not caps.mask:
        yield case(
            "mask", "mask", lambda url, m: edit(url, [png()], mask=png(), model=m, prompt="p")
        )


def refusal_cases() -> list[Case]:
    cases: list[Case] = []
    for type_name, models in MODELS.items():
        for model, caps in models.items():
            cases += _refusals(type_name, model, caps)
    return cases


# --- one gateway serving every spec type against a catch-all fake ---------------------------


class CatchAll(Recorder):
    """Records whatever reaches it and answers 500: nothing should."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_route("*", "/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.json_response({"error": {"message": "nothing may reach this"}}, status=500)


@pytest.fixture(scope="module")
def catch_all() -> Iterator[CatchAll]:
    with CatchAll() as fake:
        yield fake


@pytest.fixture(scope="module")
def everyone(
    catch_all: CatchAll, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("capabilities")
    providers = {name: entry_for(name, catch_all.url) for name in SPECS}
    config = load_config(
        env={},
        overrides={
            "data_dir": str(tmp / "data"),
            "storage": {"path": str(tmp / "blobs")},
            "providers": providers,
        },
    )
    with live_gateway(config) as gw:
        yield gw


@pytest.fixture
def nothing_sent(catch_all: CatchAll) -> Iterator[CatchAll]:
    catch_all.reset()
    yield catch_all


def test_every_declared_provider_is_covered() -> None:
    assert {"openai", "azure", "xai", "together", "recraft", "stability"} <= set(SPECS)
    assert [t for t, models in MODELS.items() if not models] == []
    assert set(SAMPLES) <= set(SPECS)


@pytest.mark.parametrize("case", refusal_cases(), ids=lambda c: c.id)
def test_what_a_model_does_not_declare_is_refused_before_upstream(
    everyone: LiveGateway, nothing_sent: CatchAll, case: Case
) -> None:
    assert_unsent(
        case.send(everyone.url, f"{case.type_name}/{case.model}"), nothing_sent, case.param
    )


@pytest.mark.parametrize(
    "type_name", [t for t, spec in SPECS.items() if not spec.models.entry(UNKNOWN)]
)
def test_an_unknown_model_is_refused_naming_the_known_ones(
    everyone: LiveGateway, nothing_sent: CatchAll, type_name: str
) -> None:
    r = generate(everyone.url, model=f"{type_name}/{UNKNOWN}", prompt="p")
    error = assert_unsent(r, nothing_sent, "model")
    assert UNKNOWN in error["message"]
    missing = [name for name in SPECS[type_name].models.known() if name not in error["message"]]
    assert missing == [], error["message"]


# --- what a model declares works, where a fake speaks the provider's wire format -------------


def _openai_compatible(fake: FakeOpenAI) -> dict[str, Any]:
    entry = {"type": "openai-compatible", "api_key": fake.api_key, "base_url": fake.url + "/v1"}
    return {"openai-compatible": entry}


# type name -> (the fake, its ``providers`` config)
FAKES: dict[str, tuple[Callable[[], Recorder], Callable[[Any], dict[str, Any]]]] = {
    "openai": (FakeOpenAI, lambda fake: fake.providers()),
    "openai-compatible": (FakeOpenAI, _openai_compatible),
    "azure": (FakeAzure, lambda fake: fake.providers()),
    "xai": (FakeXAI, lambda fake: fake.providers()),
    "together": (FakeTogether, lambda fake: fake.providers()),
    "recraft": (FakeRecraft, lambda fake: fake.providers()),
    "stability": (FakeStability, lambda fake: fake.providers()),
    "fal": (FakeFal, lambda fake: fake.providers()),
    "replicate": (FakeReplicate, lambda fake: fake.providers()),
    "bfl": (FakeBFL, lambda fake: fake.providers()),
    "bedrock": (FakeBedrock, lambda fake: fake.providers()),
    "google": (FakeGoogle, lambda fake: fake.providers()),
    "vertex": (FakeVertex, lambda fake: fake.providers(access_token=fake.token)),
}


def served_cases() -> list[tuple[str, str]]:
    return [
        (type_name, model)
        for type_name, models in MODELS.items()
        if type_name in FAKES
        for model, caps in models.items()
        if "generations" in caps.operations and caps.refused is None
    ]


def _declared_request(caps: Capabilities) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "a fox", "n": min(2, caps.max_n)}
    if caps.output_formats:
        body["output_format"] = sorted(caps.output_formats)[0]
    if caps.sizes is not None:
        body["size"] = sorted(set(caps.sizes) - {"auto"})[0]
    return body


@pytest.mark.parametrize(("type_name", "model"), served_cases(), ids=lambda v: str(v))
def test_what_a_model_declares_is_served(type_name: str, model: str, make_config: Any) -> None:
    make_fake, providers = FAKES[type_name]
    body = _declared_request(MODELS[type_name][model])
    with make_fake() as fake, live_gateway(make_config(providers=providers(fake))) as gw:
        r = generate(gw.url, model=f"{type_name}/{model}", response_format="b64_json", **body)
    assert r.status_code == 200, error_of(r)
    assert fake.violations == []
    assert len(answered_images(r)) == body["n"]
