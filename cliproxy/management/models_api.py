"""Model lists for the web panel: `GET /auth-files/models?name=` (what one credential file serves
now) and `GET /model-definitions/{channel}` (the packaged catalog of a provider)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy.management.http import api_error, json_response
from cliproxy.routing.credentials import ModelOffer, builtin_models
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


def _model(offer: ModelOffer, provider: str, owned_by: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": offer.id}
    if offer.display_name:
        entry["display_name"] = offer.display_name
    entry["type"] = provider
    if owned_by:
        entry["owned_by"] = owned_by
    return entry


@routes.get("/auth-files/models")
async def auth_file_models(request: web.Request) -> web.Response:
    name = request.query.get("name", "").strip()
    if not name:
        raise api_error(400, "name is required")
    runtime = request.config_dict[SERVICES].holder.current
    models: list[dict[str, Any]] = []
    for cred in runtime.catalog.credentials:
        source = cred.source
        path = getattr(source, "path", None)
        if source is None or name not in (getattr(source, "id", None), getattr(path, "name", None)):
            continue
        models = [_model(offer, cred.provider, cred.owned_by) for offer in cred.models]
        break
    return json_response({"models": models})


@routes.get("/model-definitions")
@routes.get("/model-definitions/{channel}")
async def model_definitions(request: web.Request) -> web.Response:
    channel = (request.match_info.get("channel") or request.query.get("channel") or "").strip().lower()
    if not channel:
        raise api_error(400, "channel is required")
    catalog = builtin_models()
    if channel not in catalog:
        raise api_error(400, f"unknown channel: {channel} (known: {', '.join(sorted(catalog))})")
    models = [
        {
            "id": m.id,
            "display_name": m.display_name,
            "context_length": m.context_length,
            "max_output_tokens": m.max_output_tokens,
            "created": m.created,
        }
        for m in catalog[channel]
    ]
    return json_response({"channel": channel, "models": models})
