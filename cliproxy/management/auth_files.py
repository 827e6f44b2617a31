"""`/auth-files`: list, upload, download, delete and edit credential files in auth-dir (spec §2.7).

Files are parsed and validated by the credentials store before anything is written, written
atomically with mode 0600, and the runtime is rebuilt before the response, so an uploaded login
serves the next request. Names are bare `*.json` file names: no `/`, `\\`, `..` or control
characters. Uploads over 1 MiB are refused (413).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from cliproxy.credentials import store
from cliproxy.credentials.store import AuthFileCredential, CredentialFileError
from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, read_json
from cliproxy.management.providers import COMPAT, LISTS, config_auth_index
from cliproxy.management.usage_api import USAGE_STATS, UsageStats
from cliproxy.runtime import Runtime
from cliproxy.server.services import SERVICES

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_UPLOAD_BYTES = 1024 * 1024
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def checked_name(name: str, *, suffix_error: str = "name must end with .json") -> str:
    """`name` if it is a safe bare file name ending in `.json`; raises 400 with CLIProxyAPI's strings."""
    name = name.strip()
    if not name or name in (".", "..") or ".." in name or _UNSAFE_NAME.search(name):
        raise api_error(400, "invalid name")
    if not name.lower().endswith(".json"):
        raise api_error(400, suffix_error)
    return name


def _rfc3339(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- listing


def _stat(paths: Iterable[Path]) -> dict[Path, os.stat_result]:
    out: dict[Path, os.stat_result] = {}
    for path in paths:
        try:
            out[path] = path.stat()
        except OSError:
            continue
    return out


def _codex_token(cred: AuthFileCredential) -> dict[str, Any]:
    claims = store.codex_auth_claims(str(cred.metadata.get("id_token") or ""))
    return {
        "chatgpt_account_id": cred.account_id,
        "plan_type": cred.plan_type,
        "chatgpt_subscription_active_start": claims.get("chatgpt_subscription_active_start"),
        "chatgpt_subscription_active_until": claims.get("chatgpt_subscription_active_until"),
    }


@dataclass(frozen=True)
class Live:
    """Per-credential runtime facts for the listing: request counters and cooldowns."""

    stats: UsageStats | None
    cooldown_until: dict[str, float]  # auth_index -> wall-clock end of its latest cooldown
    now: float


def live_facts(request: web.Request, runtime: Runtime) -> Live:
    now = time.time()
    until: dict[str, float] = {}
    index_of = {c.id: c.auth_index for c in runtime.catalog.credentials}
    for cooldown in request.config_dict[SERVICES].health.snapshot():
        auth_index = index_of.get(cooldown.credential_id)
        if auth_index and cooldown.seconds > 0:
            until[auth_index] = max(until.get(auth_index, 0.0), now + cooldown.seconds)
    return Live(request.config_dict.get(USAGE_STATS), until, now)


def file_entry(cred: AuthFileCredential, st: os.stat_result | None, live: Live) -> dict[str, Any]:
    """One `/auth-files` list entry for a loaded credential file."""
    modtime = _rfc3339(st.st_mtime) if st else None
    success, failed, recent = live.stats.credential(cred.auth_index, live.now) if live.stats is not None else (0, 0, [])
    retry_after = live.cooldown_until.get(cred.auth_index)
    entry: dict[str, Any] = {
        "id": cred.id,
        "auth_index": cred.auth_index,
        "name": cred.name,
        "type": cred.type,
        "provider": cred.provider,
        "label": cred.label,
        "status": "disabled" if cred.disabled else "active",
        "status_message": "disabled via management API" if cred.disabled else "",
        "disabled": cred.disabled,
        "unavailable": retry_after is not None,
        "runtime_only": False,
        "source": "file",
        "size": st.st_size if st else 0,
        "success": success,
        "failed": failed,
        "recent_requests": recent,
        "email": cred.email,
        "project_id": cred.project_id,
        "account_type": "service_account" if cred.type == "vertex" else "oauth",
        "account": cred.email,
        "created_at": modtime,
        "modtime": modtime,
        "updated_at": modtime,
        "last_refresh": _rfc3339(cred.last_refresh),
        "expired": _rfc3339(cred.expires_at),
        "next_retry_after": _rfc3339(retry_after),
        "path": str(cred.path),
        "priority": cred.priority,
        "note": cred.note,
        "weight": cred.weight,
        "websockets": cred.websockets,
        "request_retry": cred.request_retry,
        "prefix": cred.prefix,
    }
    if cred.type == "codex":
        entry["id_token"] = _codex_token(cred)
    return entry


def broken_entry(runtime: Runtime, name: str, error: str, st: os.stat_result | None) -> dict[str, Any]:
    """A file in auth-dir that could not be loaded: listed so the UI can show why."""
    path = runtime.auth_dir / name
    modtime = _rfc3339(st.st_mtime) if st else None
    return {
        "id": name,
        "auth_index": "",
        "name": name,
        "type": "",
        "provider": "",
        "label": name,
        "status": "error",
        "status_message": error,
        "disabled": False,
        "unavailable": True,
        "runtime_only": False,
        "source": "file",
        "size": st.st_size if st else 0,
        "success": 0,
        "failed": 0,
        "modtime": modtime,
        "updated_at": modtime,
        "path": str(path),
    }


@routes.get("/auth-files")
async def list_auth_files(request: web.Request) -> web.Response:
    runtime = request.config_dict[SERVICES].holder.current
    creds = [c for c in runtime.auth_files if isinstance(c, AuthFileCredential)]
    broken = [(name, error) for name, error in runtime.auth_errors if "/" not in name]
    paths = [c.path for c in creds] + [runtime.auth_dir / name for name, _ in broken]
    stats = await asyncio.to_thread(_stat, paths)
    live = live_facts(request, runtime)
    service = request.config_dict[SERVICES].credentials
    files = [
        {**file_entry(c, stats.get(c.path), live), **(service.refresh_view(c) if service else {})}
        for c in creds
        if c.path in stats
    ]
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


def _validate(runtime: Runtime, name: str, data: bytes) -> dict[str, Any]:
    """Parse and validate an uploaded file; raises `CredentialFileError` with the reason."""
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CredentialFileError(f"not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise CredentialFileError("not a JSON object")
    store.credential_from_metadata(parsed, path=runtime.auth_dir / name, auth_dir=runtime.auth_dir)
    return parsed


def _save(runtime: Runtime, name: str, data: dict[str, Any]) -> None:
    runtime.auth_dir.mkdir(parents=True, exist_ok=True)
    store.write_credential_file(store.credential_path(runtime.auth_dir, name), data)


async def _read_limited(chunks: Any) -> bytes:
    buf = bytearray()
    while True:
        chunk = await chunks()
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > MAX_UPLOAD_BYTES:
            raise TooLarge


async def _store_upload(runtime: Runtime, name: str, data: bytes) -> None:
    """Validate and write one file; raises `api_error` (500 invalid auth file)."""
    try:
        parsed = _validate(runtime, name, data)
        await asyncio.to_thread(_save, runtime, name, parsed)
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
    await _store_upload(runtime, name, data)
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
            await _store_upload(runtime, name, data)
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
    """By auth id, then file name, then path basename (spec §2.7)."""
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


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _delete_all(auth_dir: Path) -> int:
    count = 0
    try:
        children = list(auth_dir.iterdir())
    except OSError:
        return 0
    for child in children:
        if child.name.endswith(".json") and child.is_file() and _unlink(child):
            count += 1
    return count


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
    runtime = request.config_dict[SERVICES].holder.current
    if request.query.get("all", "").strip().lower() in ("true", "1", "*"):
        count = await asyncio.to_thread(_delete_all, runtime.auth_dir)
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
        if await asyncio.to_thread(_unlink, path):
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


def _read_metadata(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise CredentialFileError("not a JSON object")
    return data


async def _rewrite(request: web.Request, runtime: Runtime, cred: AuthFileCredential, change: Any) -> None:
    """Read the file as it is now, apply `change(metadata)`, validate, write (0600, atomic), reload."""
    try:
        data = await asyncio.to_thread(_read_metadata, cred.path)
    except FileNotFoundError:
        raise api_error(404, "auth file not found") from None
    except (ValueError, CredentialFileError) as exc:
        raise api_error(500, f"invalid auth file: {exc}") from None
    change(data)
    try:
        store.credential_from_metadata(data, path=cred.path, auth_dir=runtime.auth_dir)
    except CredentialFileError as exc:
        raise api_error(400, f"invalid auth file: {exc}") from None
    await asyncio.to_thread(store.write_credential_file, cred.path, data)
    await config_writer(request).reload()


def _config_entry(runtime: Runtime, auth_index: str) -> tuple[str, int, int | None] | None:
    """(list key, entry index, api-key-entries index) of the config credential with `auth_index`."""
    config = runtime.config
    for key in LISTS:
        for i, entry in enumerate(getattr(config, key.replace("-", "_"))):
            if config_auth_index(key, entry.base_url, entry.api_key) == auth_index:
                return key, i, None
    for i, provider in enumerate(config.openai_compatibility):
        for k, key_entry in enumerate(provider.api_key_entries):
            if config_auth_index(COMPAT, provider.base_url, key_entry.api_key) == auth_index:
                return COMPAT, i, k
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

        await _rewrite(request, runtime, cred, set_disabled)
        return json_response({"status": "ok", "disabled": disabled})
    found = _config_entry(runtime, auth_index or name)
    if found is None:
        raise api_error(404, "auth file not found")
    key, index, _ = found

    def toggle(doc: ConfigDoc) -> None:
        entries = doc.get(key) or []
        if not (isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict)):
            raise api_error(404, "auth file not found")
        entry = entries[index]
        if key == COMPAT:
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

    await config_writer(request).update(toggle)
    if key == COMPAT:
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
        store.LEGACY_KEYS.get(str(k), str(k)): v for k, v in body.items() if k != "name" and str(k).strip()
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

    await _rewrite(request, runtime, cred, apply)
    return json_response(OK)
