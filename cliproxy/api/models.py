"""Model listings in the shape each client expects, as CLIProxyAPI serves them.

`GET /v1/models` is shared by three dialects: Anthropic shape when `anthropic-version` is sent or
the User-Agent is Claude Code (non-claude ids cloaked as `claude-fable-5-dd-<reversed>`, so that
Claude Code offers them, unless `claude-code.disable-cloaking-model-list`), Gemini
shape when `x-goog-api-key` carries the key, OpenAI shape otherwise. `/v1beta/models` is Gemini.
A key object with `models` patterns sees only the models it may use, in every shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.api.errors import dialect_error
from cliproxy.policy import model_allowed
from cliproxy.routing.catalog import DEFAULT_CONTEXT_TOKENS, DEFAULT_OUTPUT_TOKENS, Route, cloak, uncloak
from cliproxy.server.access import CLIENT, route_dialect
from cliproxy.server.services import SERVICES
from cliproxy.translate import Dialect

GEMINI_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def visible_routes(request: web.Request) -> list[Route]:
    """The routes this caller may see: listable, and inside its key's model scope (issue 8)."""
    runtime = request.app[SERVICES].holder.current
    health = request.app[SERVICES].health
    identity = request.get(CLIENT)
    scope = identity.policy if identity is not None and identity.limited else None
    team = identity.team if identity is not None else None  # a member's key: its team's access groups too
    routes = runtime.catalog.routes.values()
    return [
        route
        for route in routes
        if health.listable(route) and model_allowed(scope, route.model) and (team is None or team.allows(route.model))
    ]


def openai_model(route: Route) -> dict[str, Any]:
    return {"id": route.model, "object": "model", "created": route.created, "owned_by": route.owned_by}


def anthropic_model(route: Route, *, cloaked: bool = True) -> dict[str, Any]:
    """`cloaked` False (`claude-code.disable-cloaking-model-list`): the real id."""
    created = datetime.fromtimestamp(route.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": cloak(route.model) if cloaked else route.model,
        "object": "model",
        "owned_by": route.owned_by,
        "created_at": created,
        "type": "model",
        "display_name": route.display_name or route.model,
        "max_input_tokens": route.context_length or DEFAULT_CONTEXT_TOKENS,
        "max_tokens": route.max_output_tokens or DEFAULT_OUTPUT_TOKENS,
    }


def gemini_model(route: Route) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": "models/" + route.model,
        "displayName": route.display_name or route.model,
        "description": route.display_name or route.model,
        "supportedGenerationMethods": GEMINI_METHODS,
    }
    if route.context_length:
        item["inputTokenLimit"] = route.context_length
    if route.max_output_tokens:
        item["outputTokenLimit"] = route.max_output_tokens
    return item


def _config(request: web.Request) -> Any:
    return request.app[SERVICES].holder.current.config


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=jsonio.dumps(obj), status=status, content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    routes = visible_routes(request)
    dialect = Dialect.GEMINI if request.path.startswith("/v1beta") else route_dialect(request)
    if dialect is Dialect.GEMINI:
        return _json({"models": [gemini_model(r) for r in routes]})
    if dialect is Dialect.CLAUDE:
        cloaked = not _config(request).claude_code.disable_cloaking_model_list
        data = sorted((anthropic_model(r, cloaked=cloaked) for r in routes), key=lambda m: (m["display_name"], m["id"]))
        return _json(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    return _json({"object": "list", "data": [openai_model(r) for r in routes]})


async def get_model(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    gemini = request.path.startswith("/v1beta") or route_dialect(request) is Dialect.GEMINI
    if wanted.startswith("models/"):
        wanted = wanted[len("models/") :]
    wanted = uncloak(wanted)
    for route in visible_routes(request):
        if route.model == wanted:
            if gemini:
                return _json(gemini_model(route))
            if route_dialect(request) is Dialect.CLAUDE:
                return _json(
                    anthropic_model(route, cloaked=not _config(request).claude_code.disable_cloaking_model_list)
                )
            return _json(openai_model(route))
    if gemini:
        return dialect_error(Dialect.GEMINI, 404, f"models/{wanted} is not found")
    dialect = route_dialect(request)
    return dialect_error(dialect, 404, f"The model '{wanted}' does not exist", code="model_not_found")
