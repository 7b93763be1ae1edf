"""Turn a raw body (JSON or multipart fields) into a validated ``ImageRequest``.

Routing fields may sit under ``orq`` or at the top level (orq SDK 4.17 sends both); they are
merged field by field and the top-level value wins. ``identity`` wins over the deprecated
``contact``. Any violation is a 400 ``invalid_request_body`` whose ``param`` names the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .config import LimitsConfig
from .errors import InvalidRequest
from .limits import check_raw_lists
from .models import (
    ROUTING_FIELDS,
    CreateImageEditRequestBody,
    CreateImageRequestBody,
    CreateImageVariationRequestBody,
    RoutingOptions,
)
from .request import BODY_FIELDS, PROMPT_PARAM_TYPES, ImageRequest, Operation, UploadedFile

BODY_MODELS: dict[Operation, type[BaseModel]] = {
    "generations": CreateImageRequestBody,
    "edits": CreateImageEditRequestBody,
    "variations": CreateImageVariationRequestBody,
}
# The body fields copied into ImageRequest as they are (the parameter table's ``body`` column).
REQUEST_FIELDS = BODY_FIELDS
# per operation, the request fields its body model has (the others keep ImageRequest's default)
BODY_FIELDS_OF: dict[Operation, tuple[str, ...]] = {
    op: tuple(f for f in REQUEST_FIELDS if f in model.model_fields)
    for op, model in BODY_MODELS.items()
}
# What a trace keeps of the body as sent besides the prompt (the console shows it, replays it).
ECHO_FIELDS = (*(f for f in REQUEST_FIELDS if f != "prompt"), "orq", "metadata", *ROUTING_FIELDS)


def _prompt_parameters() -> type[BaseModel]:
    """The ``parameters`` of a stored prompt version, built from the parameter table."""
    columns: dict[str, Any] = {name: (t | None, None) for name, t in PROMPT_PARAM_TYPES.items()}
    return create_model(
        "PromptParameters",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Defaults a version may set; unknown keys are a 400 so typos do not vanish.",
        **columns,
    )


if TYPE_CHECKING:  # its fields come from the table at run time

    class PromptParameters(BaseModel):
        """Defaults a version may set; unknown keys are a 400 so typos do not vanish."""

else:
    PromptParameters = _prompt_parameters()


def error_param(loc: tuple[int | str, ...]) -> str:
    """Pydantic's error location → ``orq.retry.on_codes[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or "(" in part:  # validator/union tags, not field names
            continue
        else:
            out += f".{part}" if out else part
    return out or "body"


def validation_error(exc: ValidationError) -> InvalidRequest:
    first = exc.errors(include_url=False)[0]
    param = error_param(tuple(first["loc"]))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        msg = "field required"
    return InvalidRequest(f"{param}: {msg}", param=param)


def merge_options(body: BaseModel) -> RoutingOptions:
    """``orq`` fields overlaid by the top-level twins that were actually given."""
    merged: dict[str, Any] = {}
    orq = getattr(body, "orq", None)
    if orq is not None:
        for name in orq.model_fields_set:
            value = getattr(orq, name)
            if value is not None:
                merged[name] = value
    for name in ROUTING_FIELDS:
        if name in body.model_fields_set:
            value = getattr(body, name)
            if value is not None:
                merged[name] = value
    if merged.get("identity") is None and merged.get("contact") is not None:
        merged["identity"] = merged["contact"]
    return RoutingOptions.model_construct(**merged)


def build_request(
    operation: Operation,
    raw: dict[str, Any],
    images: list[UploadedFile] | None = None,
    mask: UploadedFile | None = None,
    limits: LimitsConfig | None = None,
) -> ImageRequest:
    """Validate ``raw`` for ``operation`` and build the normalised request (with ``limits``:
    the fan-out lists are counted first, so an oversize one costs no validation)."""
    if not isinstance(raw, dict):
        raise InvalidRequest("the request body must be a JSON object", param="body")
    if limits is not None:
        check_raw_lists(raw, limits)
    try:
        body = BODY_MODELS[operation].model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    images = images or []
    if operation in ("edits", "variations") and not images:
        raise InvalidRequest("an image file is required", param="image")
    if operation == "variations" and len(images) > 1:
        raise InvalidRequest("variations take exactly one image", param="image")
    present = BODY_FIELDS_OF[operation]  # a missing attribute is slow on a pydantic model
    values: dict[str, Any] = {name: getattr(body, name) for name in present}
    return ImageRequest(
        operation=operation,
        metadata=dict(getattr(body, "metadata", None) or {}),
        images=images,
        mask=mask,
        options=merge_options(body),
        echo={name: raw[name] for name in ECHO_FIELDS if name in raw},
        **values,
    )
