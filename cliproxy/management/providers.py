"""Provider key lists: every `<name>-api-key` section of the provider registry, and
`openai-compatibility`, with CLIProxyAPI's PUT/PATCH/DELETE rules and error strings.

The per-provider rules (drop entries without base-url, de-duplicate, require an api-key, strict
matching) are the registry entry's flags. GET entries carry `"auth-index"` (the id
`/auth-files`, usage and `reset-quota` use); it is dropped again from entries sent back with
PUT/PATCH. Lookups by index or key run inside the config writer's lock, against the file as it
is at that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from cliproxy.config.model import Config
from cliproxy.config.sections import MAX_WEIGHT
from cliproxy.credentials.registry import BUILTIN
from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, query_index, read_json
from cliproxy.routing.credentials import auth_index
from cliproxy.server.services import SERVICES
from cliproxy.upstream.api_keys import ApiKeySection

routes = web.RouteTableDef()

AUTH_INDEX = "auth-index"
COMPAT = "openai-compatibility"


def config_auth_index(section: str, base_url: str, api_key: str) -> str:
    """The stable index of a config credential, the same one routing gives it (as CLIProxyAPI)."""
    return auth_index(f"{section}:{base_url}+{api_key}")


# The API-key sections of the registry (each with its rules); `openai-compatibility` has its own.
LISTS: dict[str, ApiKeySection] = {s.section: s for s in BUILTIN.key_sections if isinstance(s, ApiKeySection)}


# --------------------------------------------------------------------------- sanitising


def weight_problem(value: Any) -> str:
    """'' when `value` is a valid weight (an integer ≤ 1,000,000, or absent)."""
    if value is None:
        return ""
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be an integer"
    if value > MAX_WEIGHT:
        return f"must be at most {MAX_WEIGHT}"
    return ""


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def sanitise_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One credential entry as CLIProxyAPI stores it: trimmed strings, clean prefix/headers/patterns."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key == AUTH_INDEX or value is None:
            continue
        value = _strip(value)
        if key == "prefix" and isinstance(value, str):
            value = value.strip("/")
            if "/" in value or not value:
                continue
        elif key == "headers" and isinstance(value, dict):
            value = {str(k).strip(): str(v).strip() for k, v in value.items() if str(k).strip() and str(v).strip()}
            if not value:
                continue
        elif key == "excluded-models" and isinstance(value, list):
            seen: dict[str, None] = {}
            for pattern in value:
                if isinstance(pattern, str) and pattern.strip():
                    seen[pattern.strip().lower()] = None
            value = list(seen)
        out[key] = value
    return out


def _identity(entry: dict[str, Any]) -> tuple[Any, ...]:
    headers = entry.get("headers") if isinstance(entry.get("headers"), dict) else {}
    return (
        entry.get("api-key", ""),
        entry.get("base-url", ""),
        entry.get("proxy-url", ""),
        entry.get("prefix", ""),
        tuple(sorted((headers or {}).items())),
    )


def sanitise_list(spec: ApiKeySection, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for raw in entries:
        entry = sanitise_entry(raw)
        if spec.needs_base_url and not entry.get("base-url"):
            continue
        if spec.dedupe:
            if not entry.get("api-key") and not entry.get("base-url"):
                continue
            identity = _identity(entry)
            if identity in seen:
                continue
            seen.add(identity)
        out.append(entry)
    return out


def sanitise_compat(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in entries:
        entry = sanitise_entry(raw)
        if not entry.get("base-url"):
            continue
        keys = entry.get("api-key-entries")
        if isinstance(keys, list):
            entry["api-key-entries"] = [sanitise_entry(k) if isinstance(k, dict) else k for k in keys]
        out.append(entry)
    return out


def items_body(body: Any) -> list[dict[str, Any]]:
    """A PUT body: an array of objects, or `{"items": [...]}` with at least one item."""
    if isinstance(body, dict):
        body = body.get("items")
        if not isinstance(body, list) or not body:
            raise api_error(400, "invalid body")
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise api_error(400, "invalid body")
    return body


def patch_body(body: Any) -> tuple[Any, dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("value"), dict):
        raise api_error(400, "invalid body")
    return body, body["value"]


def apply_patch(entry: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """Only the fields present change; `null` clears a field (weight, disable-cooling, ...)."""
    out = dict(entry)
    for key, new in value.items():
        if key == AUTH_INDEX:
            continue
        if key == "weight":
            problem = weight_problem(new)
            if problem:
                raise api_error(400, f"weight {problem}")
        if key == "disable-cooling" and new is not None and not isinstance(new, bool):
            raise api_error(400, "disable-cooling must be a boolean or null")
        if new is None:
            out.pop(key, None)
        else:
            out[key] = _strip(new)
    return out


# --------------------------------------------------------------------------- GET


def _dump(model: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return data


def _entries_with_index(kind: str, entries: tuple[BaseModel, ...]) -> list[dict[str, Any]]:
    out = []
    for entry in entries:
        data = {"api-key": "", **_dump(entry)}
        data[AUTH_INDEX] = config_auth_index(kind, getattr(entry, "base_url", ""), getattr(entry, "api_key", ""))
        out.append(data)
    return out


def _compat_with_index(entries: tuple[Any, ...]) -> list[dict[str, Any]]:
    out = []
    for provider in entries:
        data = _dump(provider)
        keys = []
        for key_entry in provider.api_key_entries:
            item = {"api-key": "", **_dump(key_entry)}
            item[AUTH_INDEX] = config_auth_index(COMPAT, provider.base_url, key_entry.api_key)
            keys.append(item)
        if keys:
            data["api-key-entries"] = keys
        out.append(data)
    return out


def _get_handler(kind: str, entries_of: Callable[[Config], tuple[Any, ...]]) -> Callable[[web.Request], Any]:
    async def get(request: web.Request) -> web.Response:
        entries = entries_of(request.config_dict[SERVICES].holder.current.config)
        if kind == COMPAT:
            return json_response({kind: _compat_with_index(entries)})
        return json_response({kind: _entries_with_index(kind, entries)})

    return get


# --------------------------------------------------------------------------- key lists


def _current(doc: ConfigDoc, key: str) -> list[dict[str, Any]]:
    value = doc.get(key) or []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _trimmed(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def _matches(entry: dict[str, Any], api_key: str, base: str | None) -> bool:
    """Same trimmed api-key, and the same base-url when one was given (`?base-url=` means none)."""
    return _trimmed(entry, "api-key") == api_key and (base is None or _trimmed(entry, "base-url") == base.strip())


async def _write(request: web.Request, mutate: Callable[[ConfigDoc], None]) -> web.Response:
    await config_writer(request).update(mutate)
    return json_response(OK)


def _put_handler(spec: ApiKeySection) -> Callable[[web.Request], Any]:
    async def put(request: web.Request) -> web.Response:
        require_admin(request)
        items = items_body(await read_json(request))
        for i, item in enumerate(items):
            if spec.needs_api_key and not _trimmed(item, "api-key"):
                raise api_error(400, f"{spec.section}[{i}].api-key is required")
            problem = weight_problem(item.get("weight"))
            if problem:
                raise api_error(400, f"{spec.section}[{i}].weight: {problem}")
        clean = sanitise_list(spec, items)
        return await _write(request, lambda doc: doc.set(spec.section, clean))

    return put


def _patch_handler(spec: ApiKeySection) -> Callable[[web.Request], Any]:
    async def patch(request: web.Request) -> web.Response:
        require_admin(request)
        body, value = patch_body(await read_json(request))
        index, match = body.get("index"), body.get("match")
        base = request.query.get("base-url")

        def mutate(doc: ConfigDoc) -> None:
            entries = _current(doc, spec.section)
            target = -1
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(entries):
                target = index
            if target == -1 and isinstance(match, str) and match.strip():
                wanted = match.strip()
                if spec.strict_match:
                    hits = [i for i, e in enumerate(entries) if _matches(e, wanted, base)]
                    if len(hits) > 1:
                        raise api_error(400, "multiple items match; index is required")
                    target = hits[0] if hits else -1
                else:
                    target = next((i for i, e in enumerate(entries) if e.get("api-key") == wanted), -1)
            if target == -1:
                raise api_error(404, "item not found")
            entry = apply_patch(entries[target], value)
            gone = (spec.needs_api_key and "api-key" in value and not _trimmed(entry, "api-key")) or (
                spec.dedupe and not _trimmed(entry, "api-key") and not _trimmed(entry, "base-url")
            )
            if gone:
                del entries[target]
            else:
                entries[target] = entry
            doc.set(spec.section, sanitise_list(spec, entries))

        return await _write(request, mutate)

    return patch


def _delete_handler(spec: ApiKeySection) -> Callable[[web.Request], Any]:
    async def delete(request: web.Request) -> web.Response:
        require_admin(request)
        api_key = request.query.get("api-key", "").strip()
        base = request.query.get("base-url")
        index = query_index(request)

        def mutate(doc: ConfigDoc) -> None:
            entries = _current(doc, spec.section)
            if api_key:
                hits = [i for i, e in enumerate(entries) if _matches(e, api_key, base)]
                if base is not None and not spec.strict_match:
                    remaining = [e for i, e in enumerate(entries) if i not in hits]
                elif len(hits) > 1:
                    if base is not None:
                        raise api_error(400, "multiple items match; index is required")
                    raise api_error(400, "multiple items match api-key; base-url is required")
                elif not hits:
                    if spec.strict_match:
                        raise api_error(404, "item not found")
                    remaining = entries
                else:
                    remaining = entries[: hits[0]] + entries[hits[0] + 1 :]
            elif index is not None and 0 <= index < len(entries):
                remaining = entries[:index] + entries[index + 1 :]
            else:
                raise api_error(400, "missing api-key or index")
            doc.set(spec.section, sanitise_list(spec, remaining))

        return await _write(request, mutate)

    return delete


def _section_entries(section: str) -> Callable[[Config], tuple[Any, ...]]:
    return lambda config: config.api_key_section(section)


for _spec in LISTS.values():
    routes.get(f"/{_spec.section}")(_get_handler(_spec.section, _section_entries(_spec.section)))
    routes.put(f"/{_spec.section}")(_put_handler(_spec))
    routes.patch(f"/{_spec.section}")(_patch_handler(_spec))
    routes.delete(f"/{_spec.section}")(_delete_handler(_spec))


# --------------------------------------------------------------------------- openai-compatibility


routes.get(f"/{COMPAT}")(_get_handler(COMPAT, lambda c: c.openai_compatibility))


def _check_key_weights(entry: dict[str, Any], where: str) -> None:
    keys = entry.get("api-key-entries")
    if not isinstance(keys, list):
        return
    for k, item in enumerate(keys):
        problem = weight_problem(item.get("weight")) if isinstance(item, dict) else ""
        if problem:
            raise api_error(400, f"{where}api-key-entries[{k}].weight: {problem}")


@routes.put(f"/{COMPAT}")
async def put_compat(request: web.Request) -> web.Response:
    require_admin(request)
    items = items_body(await read_json(request))
    for i, item in enumerate(items):
        if _trimmed(item, "base-url"):
            _check_key_weights(item, f"{COMPAT}[{i}].")
    clean = sanitise_compat(items)
    return await _write(request, lambda doc: doc.set(COMPAT, clean))


@routes.patch(f"/{COMPAT}")
async def patch_compat(request: web.Request) -> web.Response:
    require_admin(request)
    body, value = patch_body(await read_json(request))
    index, name = body.get("index"), body.get("name")
    _check_key_weights(value, "")

    def mutate(doc: ConfigDoc) -> None:
        entries = _current(doc, COMPAT)
        target = -1
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(entries):
            target = index
        if target == -1 and isinstance(name, str):
            target = next((i for i, e in enumerate(entries) if e.get("name") == name.strip()), -1)
        if target == -1:
            raise api_error(404, "item not found")
        if "base-url" in value and not (isinstance(value["base-url"], str) and value["base-url"].strip()):
            del entries[target]
        else:
            entries[target] = apply_patch(entries[target], value)
        doc.set(COMPAT, sanitise_compat(entries))

    return await _write(request, mutate)


@routes.delete(f"/{COMPAT}")
async def delete_compat(request: web.Request) -> web.Response:
    require_admin(request)
    name = request.query.get("name", "")
    index = query_index(request)

    def mutate(doc: ConfigDoc) -> None:
        entries = _current(doc, COMPAT)
        if name:
            remaining = [e for e in entries if e.get("name") != name]
        elif index is not None and 0 <= index < len(entries):
            remaining = entries[:index] + entries[index + 1 :]
        else:
            raise api_error(400, "missing name or index")
        doc.set(COMPAT, sanitise_compat(remaining))

    return await _write(request, mutate)
