"""The console's URL table, mounted at ``/console`` by ``api.app`` (after every API route)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import people, playground, prompts, signin, traces, usage
from .web import PREFIX, Ctx, page, secure

STATIC = Path(__file__).parent / "static"


async def home(request: Request) -> Response:
    return secure(RedirectResponse(f"{PREFIX}/traces", status_code=303))


async def missing(ctx: Ctx) -> Response:
    return ctx.render("error.html", status=404, status_code=404, message="No such page.")


class Static(StaticFiles):
    """Our CSS and JS: the console's security headers, cached for a day."""

    async def get_response(self, path: str, scope: object) -> Response:  # type: ignore[override]
        response = await super().get_response(path, scope)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "public, max-age=86400"
        return secure(response, cache=True)


def console_mount() -> Mount:
    inner: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/sign-in", signin.get_sign_in, methods=["GET"]),
        Route("/sign-in", signin.post_sign_in, methods=["POST"]),
        Route("/sign-out", page(signin.post_sign_out), methods=["POST"]),
        Route("/workspace", page(signin.post_workspace), methods=["POST"]),
        Route("/traces", page(traces.list_traces), methods=["GET"]),
        Route("/traces/{trace_id}", page(traces.get_trace), methods=["GET"]),
        Route("/traces/{trace_id}/images/{index}", page(traces.get_image), methods=["GET"]),
        Route("/traces/{trace_id}/images/{index}/thumb", page(traces.get_thumb), methods=["GET"]),
        Route("/identities", page(people.list_identities), methods=["GET"]),
        Route("/identities/{identity_id}", page(people.get_identity), methods=["GET"]),
        Route("/threads", page(people.list_threads), methods=["GET"]),
        Route("/threads/{thread_id}", page(people.get_thread), methods=["GET"]),
        Route("/prompts", page(prompts.list_prompts), methods=["GET"]),
        Route("/prompts", page(prompts.post_prompt), methods=["POST"]),
        Route("/prompts/{prompt_id}", page(prompts.get_prompt), methods=["GET"]),
        Route("/prompts/{prompt_id}/versions", page(prompts.post_version), methods=["POST"]),
        Route("/usage", page(usage.get_usage), methods=["GET"]),
        Route("/playground", page(playground.get_playground), methods=["GET"]),
        Route("/playground", page(playground.post_playground, form_bytes=None), methods=["POST"]),
        Mount("/static", app=Static(directory=STATIC), name="static"),
        Route("/{rest:path}", page(missing), methods=["GET", "POST"]),
    ]
    return Mount(PREFIX, routes=inner)
