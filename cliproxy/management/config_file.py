"""`GET`/`PUT /config.yaml`: the raw file, for editors that show and save the whole YAML.

The file holds the bcrypt hashes of the management secret and viewer keys; they never leave the
process. GET replaces them with placeholders, and PUT puts the current hashes back where it
finds the placeholders, so an editor can save the text it was given without losing access.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from aiohttp import web

from cliproxy.config.load import yaml_error_text
from cliproxy.management.config_writer import config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response
from cliproxy.runtime import ManagementAccess
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

SECRET_PLACEHOLDER = "<redacted:secret-key>"
REDIS_PASSWORD_PLACEHOLDER = "<redacted:redis-password>"


def _placeholders(access: ManagementAccess) -> list[tuple[str, str]]:
    pairs = [(access.secret_hash, SECRET_PLACEHOLDER)] if access.secret_hash else []
    pairs.extend((h, f"<redacted:viewer-keys[{i}]>") for i, h in enumerate(access.viewer_hashes) if h)
    return pairs


def redact_hashes(text: str, access: ManagementAccess) -> str:
    for secret, placeholder in _placeholders(access):
        text = text.replace(secret, placeholder)
    return text


def restore_hashes(text: str, access: ManagementAccess) -> str:
    for secret, placeholder in _placeholders(access):
        text = text.replace(placeholder, secret)
    return text


def redact_redis_password(text: str, password: str) -> str:
    """`shared-state.redis-url`'s password becomes a placeholder that PUT puts back."""
    return text.replace(f":{password}@", f":{REDIS_PASSWORD_PLACEHOLDER}@") if password else text


def restore_redis_password(text: str, password: str) -> str:
    return text.replace(f":{REDIS_PASSWORD_PLACEHOLDER}@", f":{password}@") if password else text


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@routes.get("/config.yaml")
async def get_config_yaml(request: web.Request) -> web.Response:
    runtime = request.config_dict[SERVICES].holder.current
    raw = await asyncio.to_thread(_read, runtime.config_path)
    if raw is None:
        raise api_error(404, "not_found", message="config file not found")
    text = raw.decode("utf-8", errors="surrogateescape")
    text = redact_redis_password(redact_hashes(text, runtime.management), runtime.config.shared_state.password)
    body = text.encode("utf-8", errors="surrogateescape")
    return web.Response(
        body=body,
        headers={
            "Content-Type": "application/yaml; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.put("/config.yaml")
async def put_config_yaml(request: web.Request) -> web.Response:
    require_admin(request)
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise api_error(400, "invalid_yaml", message="the body is not UTF-8 text") from None
    runtime = request.config_dict[SERVICES].holder.current
    text = restore_redis_password(restore_hashes(text, runtime.management), runtime.config.shared_state.password)
    if not text.strip():
        raise api_error(400, "invalid_yaml", message="the body is empty")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise api_error(400, "invalid_yaml", message=yaml_error_text(exc)) from None
    if not isinstance(data, dict):
        raise api_error(400, "invalid_yaml", message="the top level must be a mapping")
    await config_writer(request).replace_text(text)
    return json_response({"ok": True, "changed": ["config"]})
