"""The ``models:`` and ``defaults:`` config sections: model aliases and default models.

An alias is a bare name a caller may use instead of ``provider/model``::

    models:
      dall-e-3: openai/dall-e-3                       # one model
      house-style:                                    # one model, parameters pinned
        model: bfl/flux-pro-1.1
        params: {output_format: webp}
      fast:                                           # several: load-balanced (or in order)
        models: [openai/gpt-image-1, {model: fal/flux-dev, weight: 0.2}]
        strategy: load_balance                        # or: fallback
        orq: {retry: {count: 2, on_codes: [429]}}     # default routing; the request's wins

Aliases name ``provider/model`` names only, and an alias name never contains ``/``: so an
alias cannot name another alias (no cycles, one lookup). Everything is checked when the
config loads (``imagegate serve`` stops with a line naming the key): pinned parameters against
the request parameter table (``request.PROMPT_PARAM_TYPES``: the parameters a stored default
may set), ``orq`` against the routing option models, and the counts against ``limits``.
Resolution at request time is ``routing/names.py``.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from .models import RoutingOptions, Weight
from .request import OPERATIONS, PROMPT_PARAM_TYPES

# What an alias's ``orq`` may set: routing only (identity, thread and prompt are the caller's).
ALIAS_ROUTING = ("retry", "fallbacks", "fallback_on_codes", "cache", "load_balancer", "timeout")
PINNABLE: dict[str, Any] = dict(PROMPT_PARAM_TYPES)
_ADAPTERS: dict[str, TypeAdapter[Any]] = {name: TypeAdapter(t) for name, t in PINNABLE.items()}


def qualified(name: str) -> bool:
    """``provider/model`` with both parts non-empty (the form every alias must name)."""
    provider, sep, model = name.partition("/")
    return bool(sep and provider and model)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AliasModel(_Strict):
    """One model of a list alias; ``weight`` only matters when the list is load-balanced."""

    model: str
    weight: Weight = 0.5


class Alias(_Strict):
    """One alias: ``model`` or ``models`` (exactly one), pins, default routing."""

    model: str | None = None
    models: list[AliasModel] | None = None
    strategy: Literal["load_balance", "fallback"] = "load_balance"
    params: dict[str, Any] = Field(default_factory=dict)
    orq: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        """``name: provider/model`` and ``name: [a/x, b/y]`` are shorthands."""
        if isinstance(data, str):
            return {"model": data}
        if isinstance(data, list):
            data = {"models": data}
        if isinstance(data, dict) and isinstance(data.get("models"), list):
            items = [{"model": m} if isinstance(m, str) else m for m in data["models"]]
            return {**data, "models": items}
        return data

    @model_validator(mode="after")
    def _check(self) -> Alias:
        if (self.model is None) == (self.models is None):
            raise ValueError("give exactly one of model (a provider/model) or models (a list)")
        if self.models is not None and not self.models:
            raise ValueError("models: needs at least one provider/model")
        for name in self.targets():
            if not qualified(name):
                raise ValueError(
                    f"{name[:80]!r} is not a provider/model name (an alias names models, "
                    "never another alias)"
                )
        self.params = {name: pinned(name, value) for name, value in self.params.items()}
        if self.orq is not None:
            self.orq = routing(self.orq)
        return self

    def targets(self) -> list[str]:
        """The provider/model names this alias stands for, in order."""
        if self.model is not None:
            return [self.model]
        return [m.model for m in self.models or []]

    def routing(self) -> RoutingOptions | None:
        """The alias's default ``orq`` routing, validated."""
        return RoutingOptions.model_validate(self.orq) if self.orq is not None else None


def pinned(name: str, value: Any) -> Any:
    """A pinned parameter checked against its row of the request parameter table."""
    adapter = _ADAPTERS.get(name)
    if adapter is None:
        close = difflib.get_close_matches(name, sorted(PINNABLE), n=1)
        hint = f"did you mean {close[0]}?" if close else f"one of {', '.join(sorted(PINNABLE))}"
        raise ValueError(f"params.{name[:60]}: not a parameter an alias may pin ({hint})")
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"]
        raise ValueError(f"params.{name}: {msg}") from None


def routing(orq: dict[str, Any]) -> dict[str, Any]:
    """An alias's ``orq``: routing fields only, valid, naming provider/model names only."""
    for key in orq:
        if key not in ALIAS_ROUTING:
            raise ValueError(f"orq.{key[:60]}: an alias may set only {', '.join(ALIAS_ROUTING)}")
    try:
        options = RoutingOptions.model_validate(orq)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"orq.{where}: {first['msg']}") from None
    names = [f.model for f in options.fallbacks or []]
    if options.load_balancer is not None:
        names += [m.model for m in options.load_balancer.models]
    for name in names:
        if not qualified(name):
            raise ValueError(f"orq: {name[:80]!r} is not a provider/model name")
    return orq


class ModelDefaults(_Strict):
    """The model used when a request names none, per operation (a bare name, an alias or a
    provider/model; None: OpenAI's defaults when ``openai`` is configured, else a 400)."""

    generations: str | None = None
    edits: str | None = None
    variations: str | None = None


class DefaultsConfig(_Strict):
    model: ModelDefaults = Field(default_factory=ModelDefaults)

    @model_validator(mode="before")
    @classmethod
    def _one_for_all(cls, data: Any) -> Any:
        """``defaults: {model: x}`` sets the same default for every operation."""
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            return {**data, "model": dict.fromkeys(OPERATIONS, data["model"])}
        return data


def check_models(
    aliases: dict[str, Alias],
    *,
    max_aliases: int,
    max_list: int,
    max_fallbacks: int,
    max_name_chars: int,
) -> None:
    """Counts and names of the ``models:`` section within ``limits`` (ValueError otherwise)."""
    if len(aliases) > max_aliases:
        raise ValueError(
            f"at most {max_aliases} aliases (limits.max_model_aliases), got {len(aliases)}"
        )
    for name, alias in aliases.items():
        label = repr(name[:60])
        if not name or "/" in name or len(name) > max_name_chars:
            raise ValueError(
                f"alias {label}: a bare name of 1 to {max_name_chars} characters without '/'"
            )
        targets = alias.targets()
        most, key = (max_list, "max_load_balancer_models")
        if alias.strategy == "fallback":
            most, key = (1 + max_fallbacks, "max_fallbacks + 1")
        if len(targets) > most:
            raise ValueError(
                f"alias {label}: at most {most} models (limits.{key}), got {len(targets)}"
            )
        if any(len(t) > max_name_chars for t in targets):
            raise ValueError(f"alias {label}: model names of at most {max_name_chars} characters")
        options = alias.routing()
        fallbacks = len(options.fallbacks or []) if options is not None else 0
        if fallbacks > max_fallbacks:
            raise ValueError(f"alias {label}: orq.fallbacks at most {max_fallbacks}")


def count_first(raw: Any, max_aliases: int) -> None:
    """Refuse an oversize ``models:`` before validating thousands of entries."""
    if isinstance(raw, dict) and len(raw) > max_aliases:
        raise ValueError(
            f"at most {max_aliases} aliases (limits.max_model_aliases), got {len(raw)}"
        )


def _bounded(raw: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """``Config.models``: counted before validation, then checked against ``limits`` (the
    field comes after ``limits`` in ``Config``, so its validated value is at hand)."""
    limits = info.data.get("limits")
    max_aliases = getattr(limits, "max_model_aliases", 1000)
    count_first(raw, max_aliases)
    aliases: dict[str, Alias] = handler(raw)
    check_models(
        aliases,
        max_aliases=max_aliases,
        max_list=getattr(limits, "max_load_balancer_models", 10),
        max_fallbacks=getattr(limits, "max_fallbacks", 10),
        max_name_chars=getattr(limits, "max_name_chars", 256),
    )
    return aliases


Aliases = Annotated[dict[str, Alias], WrapValidator(_bounded)]
