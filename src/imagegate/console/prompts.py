"""Prompts: the list (and a form to create one), one prompt's versions, a line diff between any
two of them, a form for the next version, and the traces that used the prompt."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from ..api.params import MAX_ID_CHARS, ascii_int, clean_text, query_text
from ..api.prompts import add_version, create_prompt
from ..errors import InvalidRequest
from ..store import PromptVersion
from ..store.browse import TraceFilter
from .traces import row
from .web import PREFIX, Ctx, not_found

PAGE = 50
MAX_DIFF_LINES = 2000  # per side; longer templates are compared on their first lines


@dataclass(frozen=True, slots=True)
class Line:
    op: str  # " " same, "-" only in the older, "+" only in the newer
    text: str


def version_text(v: PromptVersion) -> list[str]:
    """A version as the lines the diff compares: template, then model and parameters."""
    lines = (v.template or "").splitlines() or [""]
    lines.append(f"— model: {v.model or '(the request’s)'}")
    for name, value in sorted(v.parameters.items()):
        lines.append(f"— {name}: {orjson.dumps(value).decode()}")
    return lines


def diff(old: PromptVersion, new: PromptVersion) -> tuple[list[Line], bool]:
    """Lines of ``old`` and ``new`` marked same / removed / added; True when cut short."""
    a, b = version_text(old), version_text(new)
    cut = len(a) > MAX_DIFF_LINES or len(b) > MAX_DIFF_LINES
    a, b = a[:MAX_DIFF_LINES], b[:MAX_DIFF_LINES]
    out: list[Line] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(Line(" ", t) for t in a[i1:i2])
            continue
        out.extend(Line("-", t) for t in a[i1:i2])
        out.extend(Line("+", t) for t in b[j1:j2])
    return out, cut


def _prompt_id(ctx: Ctx) -> str:
    raw = ctx.request.path_params["prompt_id"]
    if not raw or not clean_text(raw, MAX_ID_CHARS):
        raise not_found("prompt")
    return str(raw)


def _field(ctx: Ctx, name: str) -> str | None:
    assert ctx.form is not None
    value = ctx.form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _version_body(ctx: Ctx) -> dict[str, Any]:
    body: dict[str, Any] = {"template": _field(ctx, "template"), "model": _field(ctx, "model")}
    raw = _field(ctx, "parameters")
    if raw:
        try:
            body["parameters"] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("parameters: not valid JSON", param="parameters") from None
    return body


async def list_prompts(ctx: Ctx) -> Response:
    cursor = query_text(ctx.request.query_params, "cursor", MAX_ID_CHARS)
    page = await ctx.console.store.list_prompts(ctx.workspace, cursor, PAGE)
    older = f"?cursor={quote(page.next_cursor)}" if page.next_cursor else None
    return ctx.render("prompts.html", title="Prompts", prompts=page.items, older=older)


async def post_prompt(ctx: Ctx) -> Response:
    body = {"id": _field(ctx, "id"), "name": _field(ctx, "name"), **_version_body(ctx)}
    prompt, _ = await create_prompt(ctx.console.store, ctx.workspace, body)
    ctx.gateway.control.prompts.invalidate(ctx.workspace, prompt.id)
    return ctx.redirect(f"{PREFIX}/prompts/{quote(prompt.id, safe='')}")


async def get_prompt(ctx: Ctx) -> Response:
    prompt_id = _prompt_id(ctx)
    store = ctx.console.store
    prompt = await store.get_prompt(ctx.workspace, prompt_id)
    if prompt is None:
        raise not_found("prompt")
    versions = await store.list_prompt_versions(ctx.workspace, prompt_id)
    by_number = {v.version: v for v in versions}
    q = ctx.request.query_params
    a = ascii_int(q.get("a", ""), 10)
    b = ascii_int(q.get("b", ""), 10)
    if a is None or b is None:  # default: the two newest
        a, b = (versions[-2].version, versions[-1].version) if len(versions) > 1 else (None, None)
    lines: list[Line] = []
    cut = False
    if a in by_number and b in by_number:
        lines, cut = diff(by_number[a], by_number[b])
    await ctx.settle()
    traces = await ctx.console.browse.browse_traces(
        ctx.workspace, TraceFilter(prompt_id=prompt_id, limit=20)
    )
    return ctx.render(
        "prompt.html",
        title=f"Prompt {prompt_id}",
        prompt=prompt,
        versions=versions,
        latest=versions[-1] if versions else None,
        a=a,
        b=b,
        lines=lines,
        cut=cut,
        rows=[row(t) for t in traces.items],
        params_json=lambda v: orjson.dumps(v.parameters).decode() if v.parameters else "",
    )


async def post_version(ctx: Ctx) -> Response:
    prompt_id = _prompt_id(ctx)
    version = await add_version(ctx.console.store, ctx.workspace, prompt_id, _version_body(ctx))
    if version is None:
        raise not_found("prompt")
    ctx.gateway.control.prompts.invalidate(ctx.workspace, prompt_id)
    return ctx.redirect(f"{PREFIX}/prompts/{quote(prompt_id, safe='')}")
