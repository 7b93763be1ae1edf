"""Creating prompts and their versions: body validation shared by the API and the CLI.

A version holds a text ``template`` (``{{input}}`` = the caller's prompt), an optional
``model`` that replaces the request's, and default ``parameters`` (request values win).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ulid import ULID

from ..errors import InvalidRequest
from ..models import IntLike, Quality, Seed
from ..options import validation_error
from .base import Prompt, PromptVersion
from .sql import SqlStore

PROMPT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
M = TypeVar("M", bound=BaseModel)


class PromptParameters(BaseModel):
    """Defaults a version may set; unknown keys are a 400 so typos do not vanish."""

    model_config = ConfigDict(extra="forbid")

    n: Annotated[IntLike, Field(ge=1, le=10)] | None = None
    size: Annotated[str, Field(pattern=r"^(auto|[0-9]{2,5}x[0-9]{2,5})$")] | None = None
    quality: Quality | None = None
    style: Literal["vivid", "natural"] | None = None
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: Literal["low", "auto"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: Annotated[IntLike, Field(ge=0, le=100)] | None = None
    seed: Seed | None = None


class PromptVersionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    template: Annotated[str, Field(min_length=1, max_length=32_000)]
    model: str | None = None
    parameters: PromptParameters | None = None

    @field_validator("model")
    @classmethod
    def _provider_model(cls, value: str | None) -> str | None:
        if value is not None:
            provider, sep, name = value.partition("/")
            if not sep or not provider or not name:
                raise ValueError("must be 'provider/model'")
        return value

    def params(self) -> dict[str, Any]:
        if self.parameters is None:
            return {}
        return self.parameters.model_dump(exclude_none=True)


class PromptCreateBody(BaseModel):
    """``POST /v2/prompts``: the prompt, and its version 1 when ``template`` is given."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(pattern=PROMPT_ID)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=4096)] | None = None
    template: Annotated[str, Field(min_length=1, max_length=32_000)] | None = None
    model: str | None = None
    parameters: PromptParameters | None = None

    def first_version(self) -> PromptVersionBody | None:
        if self.template is None:
            if self.model is not None or self.parameters is not None:
                raise InvalidRequest("template: field required with model or parameters",
                                     param="template")  # fmt: skip
            return None
        return validate(
            PromptVersionBody,
            {"template": self.template, "model": self.model, "parameters": self.parameters},
        )


def validate(model: type[M], raw: Any) -> M:
    if not isinstance(raw, dict):
        raise InvalidRequest("the request body must be a JSON object", param="body")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def create_prompt(
    store: SqlStore, workspace: str, raw: Any
) -> tuple[Prompt, PromptVersion | None]:
    """Validate and create in ``workspace``; ``Conflict`` (409) when the id exists there."""
    body = validate(PromptCreateBody, raw)
    first = body.first_version()
    now = time.time()
    prompt = await store.create_prompt(
        workspace, body.id or str(ULID()), body.name, body.description, now
    )
    version = None
    if first is not None:
        version = await store.add_prompt_version(
            workspace, prompt.id, first.template, first.model, first.params(), now
        )
        prompt.latest_version = 1
    return prompt, version


async def add_version(
    store: SqlStore, workspace: str, prompt_id: str, raw: Any
) -> PromptVersion | None:
    """The new version; None when the prompt does not exist in ``workspace``."""
    body = validate(PromptVersionBody, raw)
    return await store.add_prompt_version(
        workspace, prompt_id, body.template, body.model, body.params(), time.time()
    )
