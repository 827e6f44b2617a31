"""OAuth maps: `oauth-excluded-models` (provider → patterns), `oauth-model-alias` (channel →
aliases) and `oauth-request-scoped-errors` (channel → error rules), with CLIProxyAPI's
PUT/PATCH/DELETE rules."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, read_json
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

EXCLUDED = "oauth-excluded-models"
ALIASES = "oauth-model-alias"


def clean_patterns(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise api_error(400, "invalid body")
    seen: dict[str, None] = {}
    for pattern in value:
        if isinstance(pattern, str) and pattern.strip():
            seen[pattern.strip().lower()] = None
    return list(seen)


def clean_aliases(value: Any) -> list[dict[str, Any]]:
    """Entries need name and alias; name == alias (any case) is dropped; aliases are unique."""
    if not isinstance(value, list):
        raise api_error(400, "invalid body")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            raise api_error(400, "invalid body")
        name = str(item.get("name") or "").strip()
        alias = str(item.get("alias") or "").strip()
        if not name or not alias or name.lower() == alias.lower() or alias.lower() in seen:
            continue
        seen.add(alias.lower())
        entry: dict[str, Any] = {"name": name, "alias": alias}
        for key in ("fork", "force-mapping"):
            if item.get(key) is True:
                entry[key] = True
        if isinstance(item.get("display-name"), str) and item["display-name"].strip():
            entry["display-name"] = item["display-name"].strip()
        out.append(entry)
    return out


def _map_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and "items" in body and len(body) == 1:
        body = body["items"]
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    return body


def _current(doc: ConfigDoc, key: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    return value if isinstance(value, dict) else {}


async def _write(request: web.Request, key: str, build: Any) -> web.Response:
    def mutate(doc: ConfigDoc) -> None:
        new = build(_current(doc, key))
        if new:
            doc.set(key, new)
        else:
            doc.delete(key)

    await config_writer(request).update(mutate)
    return json_response(OK)


# --------------------------------------------------------------------------- excluded models


def _body_channel(body: Any) -> str:
    """The `channel` (or `provider`) a PATCH body names, normalised; 400 when missing."""
    channel = body.get("channel") or body.get("provider") if isinstance(body, dict) else None
    if not isinstance(channel, str) or not channel.strip():
        raise api_error(400, "invalid body")
    return channel.strip().lower()


async def _set_entry(request: web.Request, key: str, name: str, value: list[Any], what: str) -> web.Response:
    """Replace one entry's list; an empty list removes the entry (404 `<what> not found` when absent)."""

    def build(old: dict[str, Any]) -> dict[str, Any]:
        if value:
            old[name] = value
        elif name in old:
            del old[name]
        else:
            raise api_error(404, f"{what} not found")
        return old

    return await _write(request, key, build)


async def _delete_entry(request: web.Request, key: str, what: str, params: tuple[str, ...]) -> web.Response:
    """`DELETE ?<param>=`: drop one entry of the map."""
    require_admin(request)
    name = next((request.query[p] for p in params if request.query.get(p)), "").strip().lower()
    if not name:
        raise api_error(400, f"missing {what}")
    return await _set_entry(request, key, name, [], what)


@routes.get(f"/{EXCLUDED}")
async def get_excluded(request: web.Request) -> web.Response:
    value = request.config_dict[SERVICES].holder.current.config.oauth_excluded_models
    return json_response({EXCLUDED: {k: list(v) for k, v in value.items()}})


@routes.put(f"/{EXCLUDED}")
async def put_excluded(request: web.Request) -> web.Response:
    require_admin(request)
    body = _map_body(await read_json(request))
    new = {str(k).strip().lower(): clean_patterns(v) for k, v in body.items() if str(k).strip()}
    new = {k: v for k, v in new.items() if v}
    return await _write(request, EXCLUDED, lambda _old: new)


@routes.patch(f"/{EXCLUDED}")
async def patch_excluded(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("provider"), str) or not body["provider"].strip():
        raise api_error(400, "invalid body")
    provider = body["provider"].strip().lower()
    return await _set_entry(request, EXCLUDED, provider, clean_patterns(body.get("models")), "provider")


@routes.delete(f"/{EXCLUDED}")
async def delete_excluded(request: web.Request) -> web.Response:
    return await _delete_entry(request, EXCLUDED, "provider", ("provider",))


# --------------------------------------------------------------------------- model aliases


@routes.get(f"/{ALIASES}")
async def get_aliases(request: web.Request) -> web.Response:
    value = request.config_dict[SERVICES].holder.current.config.oauth_model_alias
    data = {
        channel: [a.model_dump(mode="json", by_alias=True, exclude_defaults=True) for a in aliases]
        for channel, aliases in value.items()
    }
    return json_response({ALIASES: data})


@routes.put(f"/{ALIASES}")
async def put_aliases(request: web.Request) -> web.Response:
    require_admin(request)
    body = _map_body(await read_json(request))
    new = {str(k).strip().lower(): clean_aliases(v) for k, v in body.items() if str(k).strip()}
    new = {k: v for k, v in new.items() if v}
    return await _write(request, ALIASES, lambda _old: new)


@routes.patch(f"/{ALIASES}")
async def patch_aliases(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    return await _set_entry(request, ALIASES, _body_channel(body), clean_aliases(body.get("aliases")), "channel")


@routes.delete(f"/{ALIASES}")
async def delete_aliases(request: web.Request) -> web.Response:
    return await _delete_entry(request, ALIASES, "channel", ("channel", "provider"))


# --------------------------------------------------------------------------- scoped error rules

SCOPED = "oauth-request-scoped-errors"
RULE_LIST_KEYS = ("rules", "errors", "items")  # the PATCH body's list, under any of these names


def clean_rules(value: Any) -> list[dict[str, Any]]:
    """Rules as the YAML holds them; each needs an integer `status` (the schema checks the rest)."""
    if not isinstance(value, list):
        raise api_error(400, "invalid body")
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("status"), int) or isinstance(item["status"], bool):
            raise api_error(400, "invalid body")
        rule: dict[str, Any] = {"status": item["status"]}
        for key in ("match", "match-regexr"):
            patterns = [p.strip() for p in item.get(key) or [] if isinstance(p, str) and p.strip()]
            if patterns:
                rule[key] = patterns
        if isinstance(item.get("action"), str) and item["action"].strip():
            rule["action"] = item["action"].strip()
        out.append(rule)
    return out


@routes.get(f"/{SCOPED}")
async def get_scoped(request: web.Request) -> web.Response:
    value = request.config_dict[SERVICES].holder.current.config.oauth_request_scoped_errors
    data = {
        channel: [
            {**r.model_dump(mode="json", by_alias=True, exclude_defaults=True), "action": r.action} for r in rules
        ]
        for channel, rules in value.items()
    }
    return json_response({SCOPED: data})


@routes.put(f"/{SCOPED}")
async def put_scoped(request: web.Request) -> web.Response:
    require_admin(request)
    body = _map_body(await read_json(request))
    new = {str(k).strip().lower(): clean_rules(v) for k, v in body.items() if str(k).strip()}
    new = {k: v for k, v in new.items() if v}
    return await _write(request, SCOPED, lambda _old: new)


@routes.patch(f"/{SCOPED}")
async def patch_scoped(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    listed = next((body[k] for k in RULE_LIST_KEYS if k in body), None)
    return await _set_entry(request, SCOPED, _body_channel(body), clean_rules(listed), "channel")


@routes.delete(f"/{SCOPED}")
async def delete_scoped(request: web.Request) -> web.Response:
    return await _delete_entry(request, SCOPED, "channel", ("channel", "provider"))
