"""The orq option models, named as in orq's SDKs, and the public request bodies.

Numbers may arrive as integral floats (``2.0``) or as multipart text (``"2.0"``); ``null``
means absent; unknown keys are ignored. Ranges are enforced here because orq's SDKs do not
check them client-side (the ranges are listed in docs/api.md).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)


def _int_like(value: Any) -> Any:
    """Accept ``2``, ``2.0`` and ``"2.0"`` for integer fields; leave anything else to pydantic."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


def _float_like(value: Any) -> Any:
    """Accept numbers and numeric text; never NaN or infinity (multipart text can say "inf")."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _bool_text(value: Any) -> Any:
    """``"true"``/``"false"`` (multipart text, any case) as booleans; anything else as is."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


IntLike = Annotated[int, BeforeValidator(_int_like)]
FloatLike = Annotated[float, BeforeValidator(_float_like)]
# Bounds come before the coercion so the JSON schema says minimum/maximum (not raw ge/le).
StatusCode = Annotated[int, Field(ge=100, le=599), BeforeValidator(_int_like)]
FallbackCode = Annotated[int, Field(ge=400, le=599), BeforeValidator(_int_like)]
RetryCount = Annotated[int, Field(ge=1, le=5), BeforeValidator(_int_like)]
TtlSeconds = Annotated[int, Field(ge=1, le=259_200), BeforeValidator(_int_like)]
ImageCount = Annotated[int, Field(ge=1, le=10), BeforeValidator(_int_like)]
Compression = Annotated[int, Field(ge=0, le=100), BeforeValidator(_int_like)]
Weight = Annotated[float, Field(ge=0.001, le=1), BeforeValidator(_float_like)]
TimeoutMs = Annotated[float, Field(ge=1), BeforeValidator(_float_like)]
# Seeds go to providers and databases as integers: anything wider than a double holds exactly
# (JSON numbers past 2**53 arrive rounded) is a 400, not a crash or a silently different seed.
MAX_SEED = 2**53 - 1
Seed = Annotated[int, Field(ge=-MAX_SEED, le=MAX_SEED), BeforeValidator(_int_like)]
MAX_VERSION = 2**31 - 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        """``null`` means absent at every level (the orq SDK sends ``"size": null``)."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


# --- orq option parts ------------------------------------------------------------------------


class Retry(_Model):
    """``retry``: 1 + count attempts per model, retried on ``on_codes`` (default [429])."""

    count: RetryCount = 3
    on_codes: Annotated[list[StatusCode], Field(min_length=1)] = Field(
        default_factory=lambda: [429]
    )


class Fallbacks(_Model):
    """One entry of ``fallbacks``: a model tried after the primary, in order."""

    model: Annotated[str, Field(min_length=1)]


class PublicIdentity(_Model):
    """``identity``: tags the request and is upserted (created when unknown)."""

    id: Annotated[str, Field(min_length=1)]
    display_name: str | None = None
    email: EmailStr | None = None
    metadata: list[dict[str, Any]] | None = None
    logo_url: str | None = None
    tags: list[str] | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_object_or_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [value]
        return value


class PublicContact(PublicIdentity):
    """``contact``: the deprecated twin of ``identity`` (same shape)."""


class Thread(_Model):
    """``thread``: groups related requests; a label only."""

    id: Annotated[str, Field(min_length=1)]
    tags: list[str] | None = None


class Prompt(_Model):
    """``prompt``: a stored prompt version applied to the request."""

    id: Annotated[str, Field(min_length=1)]
    version: str | int = "latest"

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if value is None:
            return "latest"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value != "latest":
            if not (value.isascii() and value.isdigit() and len(value) <= 10):
                raise ValueError("version must be 'latest' or a version number")
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_VERSION:
                raise ValueError(f"version must be 'latest' or a number from 1 to {MAX_VERSION}")
        return value


class Cache(_Model):
    """``cache``: exact-match cache; ttl in seconds, 1–259200, default 1800."""

    type: Literal["exact_match"]
    ttl: TtlSeconds = 1800


class LoadBalancerModel(_Model):
    model: Annotated[str, Field(min_length=1)]
    weight: Weight = 0.5


class LoadBalancer(_Model):
    """``load_balancer`` object form (orq v4.2+): weighted random choice among models."""

    type: Literal["weight_based"] = "weight_based"
    models: Annotated[list[LoadBalancerModel], Field(min_length=1)]


class LoadBalancerListItem(LoadBalancerModel):
    """``load_balancer`` list form (orq v4.1): ``[{type, model, weight}]``."""

    type: Literal["weight_based"] = "weight_based"


class Timeout(_Model):
    """``timeout``: per-attempt timeout in milliseconds."""

    call_timeout: TimeoutMs


_LB_LIST = TypeAdapter(list[LoadBalancerListItem])


def _normalise_load_balancer(value: Any) -> Any:
    """Accept the v4.1 list form ``[{type, model, weight}]`` as the v4.2 object form.

    The list is validated as a list so an error names ``load_balancer[0].weight``, as sent.
    """
    if isinstance(value, list):
        items = _LB_LIST.validate_python(value)
        models = [LoadBalancerModel(model=i.model, weight=i.weight) for i in items]
        if not models:
            raise ValueError("load_balancer needs at least one model")
        return LoadBalancer(type="weight_based", models=models)
    return value


class _RoutingFields(_Model):
    """The routing fields shared by the ``orq`` object and the body's top level."""

    name: str | None = None
    retry: Retry | None = None
    fallbacks: list[Fallbacks] | None = None
    fallback_on_codes: Annotated[list[FallbackCode], Field(max_length=20)] | None = None
    cache: Cache | None = None
    load_balancer: Annotated[LoadBalancer, BeforeValidator(_normalise_load_balancer)] | None = None
    timeout: Timeout | None = None

    @field_validator("fallback_on_codes")
    @classmethod
    def _unique_codes(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("fallback_on_codes must be unique")
        return value


class CreateImageOrq(_RoutingFields):
    """``orq`` on generations (the union of every generation of orq's schema)."""

    identity: PublicIdentity | None = None
    contact: PublicContact | None = None
    thread: Thread | None = None
    prompt: Prompt | None = None


class CreateImageVariationOrq(CreateImageOrq):
    """``orq`` on variations (and edits): the same fields; ``prompt`` is documented here."""


class CreateImageEditOrq(CreateImageOrq):
    """``orq`` on edits."""


class PostV2ProxyImagesGenerationsOrq(CreateImageOrq):
    """``orq`` on the 2025 ``/v2/proxy`` generations endpoint (the one with ``thread``)."""


class RoutingOptions(CreateImageOrq):
    """The merged result: ``orq`` fields overlaid by their top-level twins."""


# --- request bodies -------------------------------------------------------------------------

# One alias per request parameter: the bodies below and the parameter table on
# ``request.ImageRequest`` both name these, so a type or range is written once.
ModelName = Annotated[str, Field(min_length=1)]
PromptText = Annotated[str, Field(min_length=1)]
Size = str  # "WxH" or "auto"; its length is bounded by limits.max_name_chars
VariationSize = Literal["256x256", "512x512", "1024x1024"]
# What a stored prompt version may default ``size`` to: checked when the version is saved.
StoredSize = Annotated[str, Field(pattern=r"^(auto|[0-9]{2,5}x[0-9]{2,5})$")]
Quality = Literal["auto", "high", "medium", "low", "hd", "standard"]
Style = Literal["vivid", "natural"]
Background = Literal["transparent", "opaque", "auto"]
Moderation = Literal["low", "auto"]
InputFidelity = Literal["high", "low"]
OutputFormat = Literal["png", "jpeg", "webp"]
ResponseFormat = Literal["url", "b64_json"]
User = str  # length bounded by limits.max_name_chars
# ``stream``: a JSON boolean (multipart "true"/"false" is converted by ``_stream_text``)
StreamFlag = Literal[True, False]
PartialImages = Annotated[int, Field(ge=0, le=3), BeforeValidator(_int_like)]
MetadataValue = Annotated[str, Field(max_length=512)]


class _ImageBody(_RoutingFields):
    # absent: the gateway's default for the operation (docs/configuration.md, ``defaults``)
    model: ModelName | None = None
    n: ImageCount | None = None
    size: Size | None = None
    response_format: ResponseFormat | None = None
    user: User | None = None
    metadata: dict[str, MetadataValue] | None = None
    seed: Seed | None = None
    identity: PublicIdentity | None = None
    contact: PublicContact | None = None
    thread: Thread | None = None


class CreateImageRequestBody(_ImageBody):
    """``POST …/images/generations`` (JSON)."""

    prompt: PromptText
    background: Background | None = None
    moderation: Moderation | None = None
    output_compression: Compression | None = None
    output_format: OutputFormat | None = None
    quality: Quality | None = None
    style: Style | None = None
    stream: StreamFlag | None = None
    partial_images: PartialImages | None = None
    orq: CreateImageOrq | None = None

    @field_validator("stream", mode="before")
    @classmethod
    def _stream_text(cls, value: Any) -> Any:
        return _bool_text(value)


class CreateImageEditRequestBody(_ImageBody):
    """``POST …/images/edits`` (multipart); files are carried separately."""

    prompt: PromptText
    quality: Quality | None = None
    background: Background | None = None
    input_fidelity: InputFidelity | None = None
    output_compression: Compression | None = None
    output_format: OutputFormat | None = None
    stream: StreamFlag | None = None
    partial_images: PartialImages | None = None
    orq: CreateImageEditOrq | None = None

    @field_validator("stream", mode="before")
    @classmethod
    def _stream_text(cls, value: Any) -> Any:
        return _bool_text(value)


class CreateImageVariationRequestBody(_ImageBody):
    """``POST …/images/variations`` (multipart); files are carried separately."""

    size: VariationSize | None = None
    prompt: str | None = None
    orq: CreateImageVariationOrq | None = None


ROUTING_FIELDS: tuple[str, ...] = (
    "name",
    "retry",
    "fallbacks",
    "fallback_on_codes",
    "cache",
    "load_balancer",
    "timeout",
    "identity",
    "contact",
    "thread",
)
