"""Creating prompts and their versions: the bodies of ``POST /v2/prompts`` (and of its
versions), validated here at the edge; the CLI builds the same bodies from its flags. The
store only keeps what passed.

A version holds a text ``template`` (``{{input}}`` = the caller's prompt), an optional
``model`` that replaces the request's, and default ``parameters`` (request values win).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from ulid import ULID

from ..errors import InvalidRequest
from ..options import validation_error
from ..request import PROMPT_PARAM_TYPES
from ..store import Prompt, PromptVersion, Store

PROMPT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
M = TypeVar("M", bound=BaseModel)

if TYPE_CHECKING:

    class PromptParameters(BaseModel):
        """The model built below, as mypy sees it."""

else:
    # Defaults a version may set, each typed as the parameter table types it
    # (``request.PROMPT_PARAM_TYPES``): a new prompt parameter needs no change here. Unknown
    # keys are a 400 so typos do not vanish.
    PromptParameters = create_model(
        "PromptParameters",
        __config__=ConfigDict(extra="forbid"),
        **{name: (kind | None, None) for name, kind in PROMPT_PARAM_TYPES.items()},
    )


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
                raise InvalidRequest(
                    "template: field required with model or parameters", param="template"
                )
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
    store: Store, workspace: str, raw: Any
) -> tuple[Prompt, PromptVersion | None]:
    """Validate and create in ``workspace``; the store's ``Conflict`` (409) when the id is
    taken there."""
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
    store: Store, workspace: str, prompt_id: str, raw: Any
) -> PromptVersion | None:
    """The new version; None when the prompt does not exist in ``workspace``."""
    body = validate(PromptVersionBody, raw)
    return await store.add_prompt_version(
        workspace, prompt_id, body.template, body.model, body.params(), time.time()
    )
