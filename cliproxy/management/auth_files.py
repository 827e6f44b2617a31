"""`/auth-files`: list, upload, download, delete and edit credential files in auth-dir.

The routes, fields and error strings are CLIProxyAPI's. Every write goes through the
`CredentialStore` (validated first, one read-modify-write under the file's lock, atomic, mode
0600), and the runtime is rebuilt before the response, so an uploaded login serves the next
request. Names are bare `*.json` file names: no `/`, `\\`, `..` or control characters. Uploads
over 1 MiB are refused (413).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from cliproxy.config.model import Config
from cliproxy.credentials.files import LEGACY_KEYS, AuthFileCredential, CredentialFileError, parse_json_object
from cliproxy.credentials.registry import ProviderRegistry
from cliproxy.credentials.service import CredentialService
from cliproxy.credentials.store import CredentialStore, UnreadableFile
from cliproxy.management.auth_file_entries import broken_entry, file_entry, live_facts, stat_all
from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, read_json
from cliproxy.management.providers import config_auth_index
from cliproxy.runtime import Runtime
from cliproxy.server.services import SERVICES
from cliproxy.upstream.api_keys import KeySection

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_UPLOAD_BYTES = 1024 * 1024
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def credentials(request: web.Request) -> CredentialService:
    """The credentials service (its store is the only writer of auth-dir files)."""
    return request.config_dict[SERVICES].credentials


def checked_name(name: str, *, suffix_error: str = "name must end with .json") -> str:
    """`name` if it is a safe bare file name ending in `.json`; raises 400 with CLIProxyAPI's strings."""
    name = name.strip()
    if not name or name in (".", "..") or ".." in name or _UNSAFE_NAME.search(name):
        raise api_error(400, "invalid name")
    if not name.lower().endswith(".json"):
        raise api_error(400, suffix_error)
    return name


@routes.get("/auth-files")
async def list_auth_files(request: web.Request) -> web.Response:
    runtime = request.config_dict[SERVICES].holder.current
    creds = [c for c in runtime.auth_files if isinstance(c, AuthFileCredential)]
    broken = [(name, error) for name, error in runtime.auth_errors if "/" not in name]
    paths = [c.path for c in creds] + [runtime.auth_dir / name for name, _ in broken]
    stats = await asyncio.to_thread(stat_all, paths)
    live = live_facts(request, runtime)
    service = credentials(request)
    files = [file_entry(c, stats.get(c.path), live, service) for c in creds if c.path in stats]
    files += [broken_entry(runtime, n, e, stats.get(runtime.auth_dir / n)) for n, e in broken]
    name, auth_index = request.query.get("name"), request.query.get("auth_index")
    if name:
        files = [f for f in files if f["name"] == name or f["id"] == name]
    if auth_index:
        files = [f for f in files if f["auth_index"] == auth_index]
    files.sort(key=lambda f: str(f["name"]).lower())
    return json_response({"files": files})


# --------------------------------------------------------------------------- download


@routes.get("/auth-files/download")
async def download_auth_file(request: web.Request) -> web.Response:
    name = checked_name(request.query.get("name", ""))
    path = request.config_dict[SERVICES].holder.current.auth_dir / name
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except (FileNotFoundError, IsADirectoryError):
        raise api_error(404, "file not found") from None
    return web.Response(
        body=data,
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --------------------------------------------------------------------------- upload


class TooLarge(Exception):
    pass


async def _read_limited(chunks: Any) -> bytes:
    buf = bytearray()
    while True:
        chunk = await chunks()
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > MAX_UPLOAD_BYTES:
            raise TooLarge


async def _store_upload(store: CredentialStore, runtime: Runtime, name: str, data: bytes) -> None:
    """Validate and write one file; raises `api_error` (500 invalid auth file, as CLIProxyAPI)."""
    try:
        parsed = parse_json_object(data)
        await store.put(runtime.auth_dir / name, lambda _current: parsed)
    except CredentialFileError as exc:
        raise api_error(500, f"invalid auth file: {exc}") from None


@routes.post("/auth-files")
async def upload_auth_files(request: web.Request) -> web.Response:
    require_admin(request)
    runtime = request.config_dict[SERVICES].holder.current
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES + 64 * 1024:
        raise api_error(413, "auth file too large", max_bytes=MAX_UPLOAD_BYTES)
    if request.content_type.startswith("multipart/"):
        return await _upload_multipart(request, runtime)
    name = checked_name(request.query.get("name", ""))
    try:
        data = await _read_limited(lambda: request.content.read(65536))
    except TooLarge:
        raise api_error(413, "auth file too large", max_bytes=MAX_UPLOAD_BYTES) from None
    await _store_upload(credentials(request).store, runtime, name, data)
    await config_writer(request).reload()
    return json_response(OK)


async def _upload_multipart(request: web.Request, runtime: Runtime) -> web.Response:
    reader = await request.multipart()
    uploaded: list[str] = []
    failed: list[dict[str, str]] = []
    errors: list[web.HTTPException] = []
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or not part.filename:
            continue  # form fields and nested multiparts carry no files
        raw_name = urllib.parse.unquote(part.filename)  # aiohttp clients percent-encode names
        try:
            name = checked_name(raw_name, suffix_error="file must be .json")
            try:
                data = await _read_limited(lambda p=part: p.read_chunk(65536))  # type: ignore[misc]
            except TooLarge:
                raise api_error(413, "auth file too large", max_bytes=MAX_UPLOAD_BYTES) from None
            await _store_upload(credentials(request).store, runtime, name, data)
            uploaded.append(name)
        except web.HTTPException as exc:
            errors.append(exc)
            failed.append({"name": raw_name, "error": json.loads(exc.text or "{}").get("error", "")})
            await part.release()
    if uploaded:
        await config_writer(request).reload()
    total = len(uploaded) + len(failed)
    if total == 0:
        raise api_error(400, "no files uploaded")
    if total == 1:
        if errors:
            raise errors[0]
        return json_response(OK)
    if failed:
        return json_response(
            {"status": "partial", "uploaded": len(uploaded), "files": uploaded, "failed": failed}, status=207
        )
    return json_response({"status": "ok", "uploaded": len(uploaded), "files": uploaded})


# --------------------------------------------------------------------------- delete


def _find(runtime: Runtime, name: str) -> AuthFileCredential | None:
    """By auth id, then file name, then path basename, as CLIProxyAPI looks them up."""
    creds = [c for c in runtime.auth_files if isinstance(c, AuthFileCredential)]
    for attr in ("id", "name"):
        for cred in creds:
            if getattr(cred, attr) == name:
                return cred
    return next((c for c in creds if c.path.name == Path(name).name), None)


def _target_path(runtime: Runtime, name: str) -> Path:
    cred = _find(runtime, name)
    if cred is not None:
        return cred.path
    return runtime.auth_dir / checked_name(name)


async def _names_from(request: web.Request) -> list[str]:
    names = [n for n in request.query.getall("name", []) if n.strip()]
    if names or not request.can_read_body:
        return names
    body = await read_json(request)
    if isinstance(body, list):
        return [n for n in body if isinstance(n, str) and n.strip()]
    if isinstance(body, dict):
        found = [body["name"]] if isinstance(body.get("name"), str) and body["name"].strip() else []
        extra = body.get("names")
        if isinstance(extra, list):
            found += [n for n in extra if isinstance(n, str) and n.strip()]
        return found
    raise api_error(400, "invalid body")


@routes.delete("/auth-files")
async def delete_auth_files(request: web.Request) -> web.Response:
    require_admin(request)
    writer = config_writer(request)
    store = credentials(request).store
    runtime = request.config_dict[SERVICES].holder.current
    if request.query.get("all", "").strip().lower() in ("true", "1", "*"):
        count = await store.delete_all(runtime.auth_dir)
        await writer.reload()
        return json_response({"status": "ok", "deleted": count})
    names = await _names_from(request)
    if not names:
        raise api_error(400, "name is required")
    deleted: list[str] = []
    failed: list[dict[str, str]] = []
    for name in names:
        try:
            path = _target_path(runtime, name.strip())
        except web.HTTPException:
            failed.append({"name": name, "error": "invalid name"})
            continue
        if await store.delete(path):
            deleted.append(name)
        else:
            failed.append({"name": name, "error": "auth file not found"})
    if deleted:
        await writer.reload()
    if len(names) == 1:
        if failed:
            raise api_error(404 if failed[0]["error"] == "auth file not found" else 400, failed[0]["error"])
        return json_response(OK)
    if failed:
        return json_response({"status": "partial", "deleted": len(deleted), "files": deleted, "failed": failed}, 207)
    return json_response({"status": "ok", "deleted": len(deleted), "files": deleted})


# --------------------------------------------------------------------------- status and fields


async def _rewrite(request: web.Request, cred: AuthFileCredential, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the file as it is now, in one locked read-modify-write, then reload."""

    def changed(data: dict[str, Any]) -> dict[str, Any]:
        change(data)
        return data

    try:
        await credentials(request).store.update(cred.path, changed)
    except FileNotFoundError:
        raise api_error(404, "auth file not found") from None
    except UnreadableFile as exc:
        raise api_error(500, f"invalid auth file: {exc}") from None
    except CredentialFileError as exc:
        raise api_error(400, f"invalid auth file: {exc}") from None
    await config_writer(request).reload()


def _config_entry(registry: ProviderRegistry, config: Config, auth_index: str) -> tuple[KeySection, int] | None:
    """(section, entry index) of the config credential with `auth_index`."""
    for section in registry.key_sections:
        for entry in section.entries(config):
            if config_auth_index(entry.section, entry.base_url, entry.api_key) == auth_index:
                return section, entry.index
    return None


@routes.patch("/auth-files/status")
async def patch_auth_file_status(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    name = str(body["name"]).strip() if isinstance(body.get("name"), str) else ""
    auth_index = str(body["auth_index"]).strip() if isinstance(body.get("auth_index"), str) else ""
    if not (name or auth_index):
        raise api_error(400, "name is required")
    disabled = body.get("disabled")
    if not isinstance(disabled, bool):
        raise api_error(400, "disabled is required")
    runtime = request.config_dict[SERVICES].holder.current
    cred = _find(runtime, name) if name else None
    if cred is None and auth_index:
        cred = next((c for c in runtime.auth_files if getattr(c, "auth_index", None) == auth_index), None)
    if cred is not None:

        def set_disabled(data: dict[str, Any]) -> None:
            data["disabled"] = disabled

        await _rewrite(request, cred, set_disabled)
        return json_response({"status": "ok", "disabled": disabled})
    found = _config_entry(credentials(request).registry, runtime.config, auth_index or name)
    if found is None:
        raise api_error(404, "auth file not found")
    section, index = found
    key, toggle = section.section, section.status_toggle

    def switch(doc: ConfigDoc) -> None:
        entries = doc.get(key) or []
        if not (isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict)):
            raise api_error(404, "auth file not found")
        entry = entries[index]
        if toggle == "disabled":
            if disabled:
                entry["disabled"] = True
            else:
                entry.pop("disabled", None)
        else:
            patterns = [p for p in entry.get("excluded-models") or [] if p != "*"]
            if disabled:
                patterns.append("*")
            if patterns:
                entry["excluded-models"] = patterns
            else:
                entry.pop("excluded-models", None)
        doc.set(key, entries)

    await config_writer(request).update(switch)
    if toggle == "disabled":
        return json_response({"status": "ok", "disabled": disabled, "via": "config:disabled"})
    return json_response(
        {"status": "ok", "disabled": disabled, "via": "config:excluded-models", "excluded_pattern": "*"}
    )


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


@routes.patch("/auth-files/fields")
async def patch_auth_file_fields(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise api_error(400, "name is required")
    fields: dict[str, Any] = {
        LEGACY_KEYS.get(str(k), str(k)): v for k, v in body.items() if k != "name" and str(k).strip()
    }
    if not fields:
        raise api_error(400, "no fields to update")
    if "weight" in fields and fields["weight"] is not None:
        w = fields["weight"]
        if not isinstance(w, int) or isinstance(w, bool):
            raise api_error(400, "weight must be an integer")
    if "headers" in fields and fields["headers"] is not None and not isinstance(fields["headers"], dict):
        raise api_error(400, "headers must be an object")
    if "request_retry" in fields and fields["request_retry"] is not None:
        r = fields["request_retry"]
        if not isinstance(r, int) or isinstance(r, bool):
            raise api_error(400, "request_retry must be an integer")
        if r < 0:
            fields["request_retry"] = None
    runtime = request.config_dict[SERVICES].holder.current
    cred = _find(runtime, name.strip())
    if cred is None:
        raise api_error(404, "auth file not found")

    def apply(data: dict[str, Any]) -> None:
        for key, value in fields.items():
            _set_path(data, key, value)

    await _rewrite(request, cred, apply)
    return json_response(OK)
