"""The parameter table (``request.Param`` rows on ``ImageRequest`` fields) and what derives
from it: the body fields read, the cache key, prompt defaults, what providers and OpenAI's
wire get. The checks are generated from the table, so a new field is checked the moment it
has a row, and a field without one (or without a test sample here) fails naming it.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from imagegate.cache import cache_key
from imagegate.cache.key import KEY_PARAMS, OWN_RULE
from imagegate.control import apply_version
from imagegate.models import (
    ROUTING_FIELDS,
    LoadBalancer,
    LoadBalancerModel,
    RoutingOptions,
    VariationSize,
)
from imagegate.options import BODY_MODELS, PromptParameters, build_request
from imagegate.request import (
    BODY_FIELDS,
    KEY_FIELDS,
    OPENAI_FIELDS,
    OPERATIONS,
    PARAMS,
    PROMPT_PARAM_TYPES,
    PROMPT_PARAMS,
    PROVIDER_PARAMS,
    ImageRequest,
    Param,
    UploadedFile,
    param,
    read_table,
)
from imagegate.store import PromptVersion

CANDIDATES: tuple[Any, ...] = (1, 2, 80, "1024x1024", "512x512", "openai/a", "openai/b")


def two_values(kind: Any) -> tuple[Any, Any]:
    """Two different values ``kind`` accepts (its Literal choices first)."""
    choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    valid: list[Any] = []
    for value in (*choices, *CANDIDATES):
        try:
            value = adapter.validate_python(value)
        except ValidationError:
            continue
        if value not in valid:
            valid.append(value)
        if len(valid) == 2:
            return valid[0], valid[1]
    raise AssertionError(f"no two sample values for {kind!r}; add candidates to CANDIDATES")


def upload(data: bytes, field: str = "image") -> UploadedFile:
    return UploadedFile(field=field, filename="a.png", kind="png", size=len(data), data=data)


def base() -> ImageRequest:
    return ImageRequest(operation="generations", model="openai/gpt-image-1", prompt="a fox")


def balancer(model: str) -> RoutingOptions:
    lb = LoadBalancer(models=[LoadBalancerModel(model=model, weight=1)])
    return RoutingOptions.model_construct(load_balancer=lb)


# Two values for each field that is not a plain body value (body fields get theirs by type).
OTHER_SAMPLES: dict[str, tuple[Any, Any]] = {
    "operation": ("generations", "variations"),
    "metadata": ({"k": "1"}, {"k": "2"}),
    "images": ([upload(b"one")], [upload(b"two")]),
    "mask": (upload(b"m1", "mask"), upload(b"m2", "mask")),
    "options": (balancer("a/x"), balancer("b/y")),
    "echo": ({"size": "1"}, {"size": "2"}),
}


# --- every field has a row -------------------------------------------------------------------


def test_every_image_request_field_has_a_row() -> None:
    names = [f.name for f in dataclasses.fields(ImageRequest)]
    assert list(PARAMS) == names
    assert all(isinstance(row, Param) for row in PARAMS.values())


def test_a_field_without_a_row_is_refused_by_name() -> None:
    extended = dataclasses.make_dataclass(
        "Extended",
        [
            ("negative_prompt", "str | None", dataclasses.field(default=None)),
            ("aspect", "str | None", dataclasses.field(default=None, metadata=param(key=True))),
        ],
        bases=(ImageRequest,),
    )
    with pytest.raises(TypeError, match="negative_prompt") as caught:
        read_table(extended)
    assert "aspect" not in str(caught.value)


def test_every_field_has_samples_here() -> None:
    """So the generated checks below reach a new field (else: add it to OTHER_SAMPLES)."""
    missing = set(PARAMS) - set(BODY_FIELDS) - set(OTHER_SAMPLES)
    assert not missing, f"no test samples for {sorted(missing)}"
    missing_type = [name for name in BODY_FIELDS if PARAMS[name].type is None]
    assert not missing_type, f"body fields without a type in the table: {missing_type}"


def test_every_body_field_is_in_the_table_or_routing() -> None:
    """A body field the table does not know would be validated, then silently dropped."""
    known = {*BODY_FIELDS, *ROUTING_FIELDS, "orq", "metadata"}
    for op, model in BODY_MODELS.items():
        unknown = set(model.model_fields) - known
        assert not unknown, f"{model.__name__} ({op}) fields not in the table: {sorted(unknown)}"
    for name in BODY_FIELDS:
        assert any(name in m.model_fields for m in BODY_MODELS.values()), name


# Where an endpoint's body narrows or widens the table's type (still one named alias each).
BODY_TYPE_EXCEPTIONS: dict[tuple[str, str], Any] = {
    ("variations", "size"): VariationSize,  # OpenAI's variations take three sizes only
    ("variations", "prompt"): str,  # optional there, and may be empty
}


def _schema(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in ("title", "default", "description")}


@pytest.mark.parametrize("op", OPERATIONS)
def test_body_types_are_the_tables(op: str) -> None:
    model: type[BaseModel] = BODY_MODELS[op]  # type: ignore[index]
    props = model.model_json_schema()["properties"]
    required = set(model.model_json_schema().get("required", []))
    for name in BODY_FIELDS:
        if name not in props:
            continue
        kind = BODY_TYPE_EXCEPTIONS.get((op, name), PARAMS[name].type)
        expected = TypeAdapter(kind if name in required else kind | None).json_schema()
        assert _schema(props[name]) == _schema(expected), f"{op}: {name}"


# --- derived lists ---------------------------------------------------------------------------


def test_build_request_copies_every_body_field() -> None:
    raw: dict[str, Any] = {"model": "openai/gpt-image-1", "prompt": "a fox"}
    model = BODY_MODELS["generations"].model_fields
    for name in BODY_FIELDS:
        if name in model:
            raw[name] = two_values(PARAMS[name].type)[1]
    request = build_request("generations", raw)
    for name in BODY_FIELDS:
        if name in model:
            assert getattr(request, name) == raw[name], name


def test_params_gives_providers_exactly_the_send_column() -> None:
    request = base()
    for name in BODY_FIELDS:
        setattr(request, name, two_values(PARAMS[name].type)[0])
    request.metadata = {"k": "v"}
    assert list(request.params()) == [n for n, row in PARAMS.items() if row.send]
    assert list(base().params()) == ["prompt"]  # None means not given


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_cache_key_follows_the_key_column(name: str) -> None:
    if name in OTHER_SAMPLES:
        a, b = OTHER_SAMPLES[name]
    else:
        a, b = two_values(PARAMS[name].type)
    one = dataclasses.replace(base(), **{name: a})
    two = dataclasses.replace(base(), **{name: b})
    if PARAMS[name].key:
        assert cache_key(one, "ws") != cache_key(two, "ws"), f"{name} is keyed"
    else:
        assert cache_key(one, "ws") == cache_key(two, "ws"), f"{name} is not keyed"


def test_key_rules_cover_the_keyed_fields() -> None:
    assert set(KEY_PARAMS) | OWN_RULE == set(KEY_FIELDS)
    assert not set(KEY_PARAMS) & OWN_RULE


def test_cache_keys_are_unchanged_by_the_table() -> None:
    """Keys already in Redis stay valid: these are the hashes before the table existed (a
    deliberate change bumps ``KEY_VERSION`` and these values)."""
    raw = dict(
        model="openai/gpt-image-1",
        prompt="a red fox",
        n=2,
        size="1024x1024",
        quality="high",
        background="opaque",
        output_format="webp",
        output_compression=80,
        response_format="url",
        user="u",
        seed=7,
        cache={"type": "exact_match"},
    )
    edit = build_request("edits", raw, [upload(b"one"), upload(b"two")], upload(b"mask", "mask"))
    assert cache_key(edit, "ws_1") == (
        "6c0b96f2a5b6cde9b6f96e5b5a60e951b9fc7fca271c79273d427fe2225a2260"
    )
    gen = build_request("generations", {**raw, "style": "vivid", "moderation": "low"})
    assert cache_key(gen, None) == (
        "1bd2fff95ed9b3425d9d63b6bba0cf212e0b8b59f8a2172fd6b01bf44bdbb737"
    )


def version(parameters: dict[str, Any]) -> PromptVersion:
    return PromptVersion("p", 1, None, None, parameters, 0.0)


@pytest.mark.parametrize("name", sorted(BODY_FIELDS))
def test_prompt_versions_default_exactly_the_prompt_column(name: str) -> None:
    theirs, ours = two_values(PARAMS[name].stored or PARAMS[name].type)
    request = dataclasses.replace(base(), **{name: None})
    apply_version(request, version({name: theirs}))
    assert getattr(request, name) == (theirs if PARAMS[name].prompt else None)
    request = dataclasses.replace(base(), **{name: ours})
    apply_version(request, version({name: theirs}))
    assert getattr(request, name) == ours  # the request's value wins


def test_prompt_parameters_model_is_the_prompt_column() -> None:
    assert list(PromptParameters.model_fields) == list(PROMPT_PARAMS)
    assert set(PROMPT_PARAM_TYPES) == set(PROMPT_PARAMS)
    sample = {name: two_values(kind)[0] for name, kind in PROMPT_PARAM_TYPES.items()}
    assert PromptParameters.model_validate(sample).model_dump(exclude_none=True) == sample
    with pytest.raises(ValidationError, match="user"):
        PromptParameters.model_validate({"user": "someone"})  # not a prompt default
    for name in PROMPT_PARAMS:
        with pytest.raises(ValidationError):
            PromptParameters.model_validate({name: "bogus value"})
    with pytest.raises(ValidationError):  # stored sizes are checked more strictly
        PromptParameters.model_validate({"size": "huge"})


# --- OpenAI's wire fields --------------------------------------------------------------------

SDK_METHOD = {"generations": "generate", "edits": "edit", "variations": "create_variation"}


@pytest.mark.parametrize("op", OPERATIONS)
def test_openai_fields_are_the_sdks(op: str) -> None:
    """The openai SDK's own signatures: we forward only fields it has, and every field it has
    that this endpoint accepts and providers receive."""
    from openai.resources.images import Images

    sdk = set(inspect.signature(getattr(Images, SDK_METHOD[op])).parameters)
    ours = set(OPENAI_FIELDS[op])  # type: ignore[index]
    assert ours <= sdk, sorted(ours - sdk)
    accepted = set(BODY_MODELS[op].model_fields) & set(PROVIDER_PARAMS)  # type: ignore[index]
    assert accepted & sdk - {"model"} <= ours, sorted(accepted & sdk - ours)
    assert list(OPENAI_FIELDS[op]) == [n for n in PROVIDER_PARAMS if n in ours]  # type: ignore[index]
