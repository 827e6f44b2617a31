"""`/client-keys`: the key objects in `api-keys` (per-key scopes, limits, budgets, expiry).

Keys are addressed by their `name`. A new or rotated key is generated here, returned in that one
response, and stored only as `key-sha256`, so the file never holds it. The list shows each key
redacted, with its usage against its limits. Plain-string keys stay with `/api-keys`.

    GET    /client-keys                     list (redacted), with usage
    POST   /client-keys                     create: {"name", "models", "expires", "max-…"} → key once
    PATCH  /client-keys/{name}              change fields (`disabled`, `models`, limits, `expires`)
    POST   /client-keys/{name}/disable      (and /enable)
    POST   /client-keys/{name}/rotate       new secret, same name, limits and usage → key once
    DELETE /client-keys/{name}
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from cliproxy import jsonio
from cliproxy.clientkeys import ClientIdentity, new_key, redact
from cliproxy.config.load import format_loc
from cliproxy.config.model import ClientKey
from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, read_json
from cliproxy.policy import KeyPolicy
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

KEY = "api-keys"
# Fields a client may set on create and PATCH (YAML spelling); the secret is never one of them.
EDITABLE = frozenset(
    {
        "models",
        "disabled",
        "expires",
        "max-requests-per-minute",
        "max-tokens-per-day",
        "max-budget-usd",
        "budget-period",
        "max-concurrent",
        "allow-unknown-price",
    }
)


def _conflict(message: str) -> web.HTTPException:
    return web.HTTPConflict(text=jsonio.dumps({"error": message}).decode(), content_type="application/json")


def _not_found(name: str) -> web.HTTPException:
    return api_error(404, "client key not found", name=name)


async def public_view(item: ClientKey, identity: ClientIdentity | None, policy: KeyPolicy) -> dict[str, Any]:
    """One key as the list shows it: every field but the secret, which is redacted."""
    data: dict[str, Any] = item.model_dump(mode="json", by_alias=True, exclude={"key", "key_sha256"})
    data = {k: v for k, v in data.items() if v not in (None, "", []) or k in ("name", "models", "disabled")}
    data["key"] = redact(item.key) if item.key else f"sha256:{item.key_sha256[:8]}…"
    if identity is not None:
        data["usage"] = (await policy.status(identity))["usage"]
    return data


def _validated(fields: dict[str, Any]) -> None:
    """400 naming the field when `fields` would not make a valid key object."""
    try:
        ClientKey.model_validate({**fields, "key-sha256": "0" * 64})
    except ValidationError as exc:
        errors = [f"{format_loc(tuple(e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()]
        raise api_error(400, "invalid client key", message="; ".join(errors)) from None


def _editable(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    unknown = sorted(set(body) - EDITABLE - {"name"})
    if unknown:
        raise api_error(400, "invalid client key", message=f"unknown fields: {', '.join(unknown)}")
    return {k: v for k, v in body.items() if k in EDITABLE}


def _items(doc: ConfigDoc) -> list[Any]:
    items = doc.get(KEY) or []
    return items if isinstance(items, list) else []


def _find(items: list[Any], name: str) -> int:
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == name:
            return i
    raise _not_found(name)


@routes.get("/client-keys")
async def list_client_keys(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    runtime = services.holder.current
    by_policy = {id(i.policy): i for i in runtime.keys.by_digest.values() if i.policy is not None}
    keys = [
        await public_view(item, by_policy.get(id(item)), services.policy)
        for item in runtime.config.api_keys
        if isinstance(item, ClientKey)
    ]
    return json_response({"client-keys": keys})


@routes.post("/client-keys")
async def create_client_key(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    fields = _editable(body)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise api_error(400, "invalid client key", message="name: required")
    name = name.strip()
    _validated(fields)
    key, digest = new_key()

    def mutate(doc: ConfigDoc) -> None:
        items = _items(doc)
        if any(isinstance(item, dict) and item.get("name") == name for item in items):
            raise _conflict(f"a client key named {name!r} already exists")
        items.append({"name": name, "key-sha256": digest, **fields})
        doc.set(KEY, items)

    await config_writer(request).update(mutate)
    return json_response({"name": name, "key": key, "key-sha256": digest, **fields}, status=201)


@routes.patch("/client-keys/{name}")
async def patch_client_key(request: web.Request) -> web.Response:
    require_admin(request)
    fields = _editable(await read_json(request))
    return await _update(request, fields)


@routes.post("/client-keys/{name}/disable")
async def disable_client_key(request: web.Request) -> web.Response:
    require_admin(request)
    return await _update(request, {"disabled": True})


@routes.post("/client-keys/{name}/enable")
async def enable_client_key(request: web.Request) -> web.Response:
    require_admin(request)
    return await _update(request, {"disabled": False})


async def _update(request: web.Request, fields: dict[str, Any]) -> web.Response:
    name = request.match_info["name"]

    def mutate(doc: ConfigDoc) -> dict[str, Any]:
        items = _items(doc)
        index = _find(items, name)
        item = dict(items[index])
        for field, value in fields.items():
            if value is None:
                item.pop(field, None)  # null clears a limit
            else:
                item[field] = value
        _validated({k: v for k, v in item.items() if k not in ("key", "key-sha256")})
        items[index] = item
        doc.set(KEY, items)
        return item

    item = await config_writer(request).update(mutate)
    shown = {k: v for k, v in item.items() if k not in ("key", "key-sha256")}
    return json_response({"status": "ok", "client-key": shown})


@routes.post("/client-keys/{name}/rotate")
async def rotate_client_key(request: web.Request) -> web.Response:
    require_admin(request)
    name = request.match_info["name"]
    key, digest = new_key()

    def mutate(doc: ConfigDoc) -> None:
        items = _items(doc)
        index = _find(items, name)
        item = {k: v for k, v in items[index].items() if k != "key"}
        item["key-sha256"] = digest
        items[index] = item
        doc.set(KEY, items)

    await config_writer(request).update(mutate)
    return json_response({"name": name, "key": key, "key-sha256": digest})


@routes.delete("/client-keys/{name}")
async def delete_client_key(request: web.Request) -> web.Response:
    require_admin(request)
    name = request.match_info["name"]

    def mutate(doc: ConfigDoc) -> None:
        items = _items(doc)
        del items[_find(items, name)]
        doc.set(KEY, items)

    await config_writer(request).update(mutate)
    return json_response(OK)
