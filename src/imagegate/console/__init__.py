"""The web console at ``/console``: traces with their images, identities, threads, prompts,
usage and a playground, rendered on the server (docs/console.md).

``console_routes(config)`` is all ``api.app`` needs: nothing when ``console.enabled`` is false,
else one ``Mount`` placed after every API route, so API requests never reach it (and, having
no methods of its own, it stays out of ``/openapi.json``). Its state, templates and Jinja2
itself are loaded on the first console request (``web.console_of``).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from ..config import Config


def console_routes(config: Config) -> list[BaseRoute]:
    """The console's ``Mount``, or nothing when it is off."""
    if not config.console.enabled:
        return []
    from .routes import console_mount

    return [console_mount()]
