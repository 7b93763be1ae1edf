"""Hard bounds on one request, checked before any work starts (``limits:`` in config).

The body models (``models.py``) check what orq documents (ranges, enums); this module checks
what keeps one caller from holding a worker or the database: how many models a request may
fan out to, how many upstream attempts it may cause, how long its texts may be and how much
it may ask the control plane to store. Each violation is a 400 ``invalid_request_body`` whose
``param`` names the field, raised before planning, before the prompt store is read and before
anything is queued for the database::

    check_request(request, config.limits)      # raises InvalidRequest or returns None

Every check is linear in the size of the (already size-capped) body.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .config import LimitsConfig
from .errors import InvalidRequest
from .models import PublicIdentity, RoutingOptions
from .request import ImageRequest

MAX_URL_CHARS = 2048  # identity.logo_url


def _too_long(param: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InvalidRequest(f"{param}: at most {limit} characters", param=param)


def _too_many(param: str, count: int, limit: int, what: str) -> None:
    if count > limit:
        raise InvalidRequest(f"{param}: at most {limit} {what} (got {count})", param=param)


def _tags(param: str, tags: list[str] | None, limits: LimitsConfig) -> None:
    if tags is None:
        return
    _too_many(param, len(tags), limits.max_tags, "tags")
    for i, tag in enumerate(tags):
        _too_long(f"{param}[{i}]", tag, limits.max_tag_chars)


def _identity(param: str, identity: PublicIdentity | None, limits: LimitsConfig) -> None:
    if identity is None:
        return
    _too_long(f"{param}.id", identity.id, limits.max_name_chars)
    _too_long(f"{param}.display_name", identity.display_name, limits.max_name_chars)
    _too_long(f"{param}.logo_url", identity.logo_url, MAX_URL_CHARS)
    _tags(f"{param}.tags", identity.tags, limits)
    if identity.metadata is not None:
        size = len(orjson.dumps(identity.metadata))
        if size > limits.max_identity_metadata_bytes:
            raise InvalidRequest(
                f"{param}.metadata: at most {limits.max_identity_metadata_bytes} bytes as JSON"
                f" (got {size})",
                param=f"{param}.metadata",
            )


def _metadata(metadata: dict[str, str], limits: LimitsConfig) -> None:
    _too_many("metadata", len(metadata), limits.max_metadata_keys, "keys")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > limits.max_metadata_bytes:
        raise InvalidRequest(
            f"metadata: at most {limits.max_metadata_bytes} bytes of keys and values (got {size})",
            param="metadata",
        )


def candidate_models(request: ImageRequest) -> list[str]:
    """The distinct models the plan may try, in plan order (before capability checks)."""
    opts = request.options
    first: Iterable[str]
    if opts.load_balancer is not None:
        first = (entry.model for entry in opts.load_balancer.models)
    else:  # no model yet: ``routing/names.py`` fills in the default (checked again after)
        first = (request.model,) if request.model is not None else ()
    fallbacks = (f.model for f in opts.fallbacks or [])
    return list(dict.fromkeys([*first, *fallbacks]))


def _routing(request: ImageRequest, limits: LimitsConfig) -> None:
    opts: RoutingOptions = request.options
    if opts.load_balancer is not None:
        _too_many(
            "load_balancer.models",
            len(opts.load_balancer.models),
            limits.max_load_balancer_models,
            "models",
        )
    if opts.fallbacks is not None:
        _too_many("fallbacks", len(opts.fallbacks), limits.max_fallbacks, "models")
    models = candidate_models(request)
    for i, model in enumerate(models):
        _too_long("model" if i == 0 else "fallbacks", model, limits.max_name_chars)
    per_model = 1 + opts.retry.count if opts.retry is not None else 1
    attempts = per_model * len(models)
    if attempts > limits.max_attempts:
        raise InvalidRequest(
            f"retry.count and fallbacks: up to {attempts} upstream attempts "
            f"({per_model} per model x {len(models)} models), at most {limits.max_attempts}",
            param="retry.count" if per_model > 1 else "fallbacks",
        )


def check_request(request: ImageRequest, limits: LimitsConfig) -> None:
    """Raise a 400 naming the first field over its bound; cheap when nothing is."""
    _routing(request, limits)
    _too_long("prompt", request.prompt, limits.max_prompt_chars)
    _too_long("user", request.user, limits.max_name_chars)
    _too_long("size", request.size, limits.max_name_chars)
    if request.metadata:
        _metadata(request.metadata, limits)
    opts = request.options
    _too_long("name", opts.name, limits.max_name_chars)
    _identity("identity", opts.identity, limits)
    if opts.thread is not None:
        _too_long("thread.id", opts.thread.id, limits.max_name_chars)
        _tags("thread.tags", opts.thread.tags, limits)
    if opts.prompt is not None:
        _too_long("prompt.id", opts.prompt.id, limits.max_name_chars)


def check_raw_lists(raw: dict[str, Any], limits: LimitsConfig) -> None:
    """The fan-out lists counted on the raw body, before any model validates 20,000 entries.

    ``check_request`` checks the same bounds on the parsed request (the library path); this
    only makes a hostile body cheap to refuse: a length, not a validation per entry.
    """
    orq = raw.get("orq")
    for where in (raw, orq) if isinstance(orq, dict) else (raw,):
        fallbacks = where.get("fallbacks")
        if isinstance(fallbacks, list):
            _too_many("fallbacks", len(fallbacks), limits.max_fallbacks, "models")
        balancer = where.get("load_balancer")
        models = balancer.get("models") if isinstance(balancer, dict) else balancer
        if isinstance(models, list):
            _too_many(
                "load_balancer.models", len(models), limits.max_load_balancer_models, "models"
            )


def expanded_length(template: str, matches: list[Any], text: str | None) -> int:
    """Length of ``template`` once each match is replaced by ``text`` — without building it."""
    removed = sum(len(m.group(0)) for m in matches)
    return len(template) - removed + len(matches) * len(text or "")
