"""`/api-keys`: the plain-string client keys, with CLIProxyAPI's list semantics.

`api-keys` may also hold key objects (per-key scopes and limits, managed by the keys API). This
endpoint shows and edits only the string entries, which is all CLIProxyAPI and its web panel
know; object entries stay exactly where they are in the file, untouched by PUT, PATCH or DELETE.
Indices count string entries only.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, query_index, read_json
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

KEY = "api-keys"


def string_keys(items: list[Any]) -> list[str]:
    return [item for item in items if isinstance(item, str)]


def with_strings(items: list[Any], strings: list[str]) -> list[Any]:
    """`items` with its string entries changed into `strings`; objects keep their places.

    Old and new strings are aligned by content, so deleting a key removes that key's line (and
    its comment) rather than shifting every later key up one slot.
    """
    old = string_keys(items)
    becomes: list[list[str]] = [[] for _ in old]
    trailing: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, strings, autojunk=False).get_opcodes():
        if tag == "equal":
            for n in range(i2 - i1):
                becomes[i1 + n].append(strings[j1 + n])
        elif i1 < len(old):
            becomes[i1].extend(strings[j1:j2])
        else:
            trailing.extend(strings[j1:j2])
    out: list[Any] = []
    index = 0
    for item in items:
        if isinstance(item, str):
            out.extend(becomes[index])
            index += 1
        else:
            out.append(item)
    out.extend(trailing)
    return out


async def edit_strings(request: web.Request, edit: Callable[[list[str]], list[str]]) -> web.Response:
    """Run `edit(strings) -> strings` on the string keys inside the serialised writer."""

    def mutate(doc: ConfigDoc) -> None:
        items = doc.get(KEY) or []
        if not isinstance(items, list):
            items = []
        doc.set(KEY, with_strings(items, edit(string_keys(items))))

    await config_writer(request).update(mutate)
    return json_response(OK)


@routes.get("/api-keys")
async def get_api_keys(request: web.Request) -> web.Response:
    keys = request.config_dict[SERVICES].holder.current.config.api_keys
    return json_response({KEY: [k for k in keys if isinstance(k, str)]})


@routes.put("/api-keys")
async def put_api_keys(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    if isinstance(body, dict):
        body = body.get("items")
        if not isinstance(body, list) or not body:
            raise api_error(400, "invalid body")
    if not isinstance(body, list) or not all(isinstance(k, str) for k in body):
        raise api_error(400, "invalid body")
    new = [k.strip() for k in body if k.strip()]
    return await edit_strings(request, lambda _old: new)


@routes.patch("/api-keys")
async def patch_api_keys(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    index, value, old, new = body.get("index"), body.get("value"), body.get("old"), body.get("new")
    slot = index if isinstance(index, int) and not isinstance(index, bool) and isinstance(value, str) else None
    swap = (old, new) if isinstance(old, str) and isinstance(new, str) else None
    if slot is None and swap is None:
        raise api_error(400, "missing fields")

    def edit(keys: list[str]) -> list[str]:
        if slot is not None and isinstance(value, str) and 0 <= slot < len(keys):
            keys[slot] = value.strip()
            return keys
        if swap is None:
            raise api_error(400, "missing fields")
        for i, key in enumerate(keys):
            if key == swap[0]:
                keys[i] = swap[1].strip()
                return keys
        keys.append(swap[1].strip())
        return keys

    return await edit_strings(request, edit)


@routes.delete("/api-keys")
async def delete_api_keys(request: web.Request) -> web.Response:
    require_admin(request)
    index = query_index(request)
    value = request.query.get("value", "").strip()
    if index is None and not value:
        raise api_error(400, "missing index or value")

    def edit(keys: list[str]) -> list[str]:
        if index is not None and 0 <= index < len(keys):
            return keys[:index] + keys[index + 1 :]
        if value:
            return [k for k in keys if k.strip() != value]
        raise api_error(400, "missing index or value")

    return await edit_strings(request, edit)
