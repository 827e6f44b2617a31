"""Viewer role: read-only, and every secret redacted, enforced in one place for every route.

Runs as the management sub-app's second middleware, after the guard set `MGMT_ROLE`. For admins
it is one dict lookup. For viewers it refuses anything but GET/HEAD (403, before the handler
runs, so no handler can forget `require_admin`) and rewrites the answer of every GET: JSON and
YAML bodies get each secret-looking value replaced by `redact()`; a body it cannot inspect (a
file download, an unknown binary type) is refused rather than passed through.
"""

from __future__ import annotations

import io
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from cliproxy import jsonio
from cliproxy.clientkeys import redact
from cliproxy.management.guard import MGMT_ROLE

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})
# Field names (lowercase, `-` read as `_`) whose string values are secrets.
SECRET_FIELDS = frozenset(
    {
        "api_key",
        "api_keys",
        "apikey",
        "key",
        "keys",
        "key_sha256",
        "secret",
        "secret_key",
        "client_secret",
        "password",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "session_token",
        "authorization",
        "cookie",
        "private_key",
        "private_key_id",
        "viewer_keys",
        "management_key",
    }
)
SECRET_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_apikey", "_private_key")
# Names that look like secrets but are identifiers clients and operators need to see.
NOT_SECRET = frozenset({"client_key", "key_id", "credential_id", "token_type", "expires", "token_uri"})
SECRET_HEADER_HINTS = ("auth", "key", "token", "secret", "cookie", "session", "signature")
TEXT_PASSTHROUGH = ("text/plain", "text/html", "text/event-stream")


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_secret_field(name: str) -> bool:
    norm = _normal(name)
    if norm in NOT_SECRET:
        return False
    return norm in SECRET_FIELDS or norm.endswith(SECRET_SUFFIXES)


def _redact_url(value: str) -> str:
    """`http://user:pass@host` → `http://user:…@host` (proxy URLs carry credentials)."""
    if "@" not in value or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None:
        return value
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:…@{host}"))


def _secret_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value) if value else value
    if isinstance(value, list):
        return [_secret_value(v) if isinstance(v, str | list) else redact_tree(v) for v in value]
    return redact_tree(value)


def redact_tree(node: Any, *, headers: bool = False) -> Any:
    """A copy of a JSON-like tree with secrets redacted (mutates ruamel nodes in place to keep comments)."""
    if isinstance(node, dict):
        for name in list(node):
            value = node[name]
            key = str(name)
            if headers and isinstance(value, str):
                if any(hint in key.lower() for hint in SECRET_HEADER_HINTS):
                    node[name] = redact(value) if value else value
            elif is_secret_field(key):
                node[name] = _secret_value(value)
            elif _normal(key) == "headers" and isinstance(value, dict):
                node[name] = redact_tree(value, headers=True)
            elif isinstance(value, str):
                node[name] = _redact_url(value)
            else:
                node[name] = redact_tree(value)
        return node
    if isinstance(node, list):
        for i, value in enumerate(node):
            node[i] = _redact_url(value) if isinstance(value, str) else redact_tree(value)
        return node
    return node


def _redact_yaml(body: bytes) -> bytes:
    from ruamel.yaml import YAML

    yaml = YAML()
    tree = yaml.load(body)
    out = io.StringIO()
    yaml.dump(redact_tree(tree), out)
    return out.getvalue().encode()


def _refuse(message: str) -> web.Response:
    return web.Response(body=jsonio.dumps({"error": message}), status=403, content_type="application/json")


def redact_response(response: web.StreamResponse) -> web.StreamResponse:
    """The viewer's copy of a handler's answer (or a 403 when it cannot be made safe)."""
    if not isinstance(response, web.Response):
        if response.prepared:  # already streamed (log tails): nothing of ours to rewrite
            return response
        return _refuse("this resource is not available to the viewer role")
    body = response.body
    if body is None or response.status == 204:
        return response
    if not isinstance(body, bytes | bytearray):
        return _refuse("this resource is not available to the viewer role")
    content_type = response.content_type
    try:
        if "yaml" in content_type:
            new = _redact_yaml(bytes(body))
        elif content_type.startswith(TEXT_PASSTHROUGH):
            return response
        else:
            new = jsonio.dumps(redact_tree(jsonio.loads(body)))
    except Exception:
        log.warning("management: could not redact a %s answer for a viewer; refused", content_type)
        return _refuse("this resource is not available to the viewer role")
    response.body = new
    return response


def viewer_filter() -> Middleware:
    """Build the middleware described in the module docstring."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.get(MGMT_ROLE) != "viewer":
            return await handler(request)
        if request.method not in READ_METHODS:
            # Viewers read; every change needs the admin secret-key.
            return _refuse("admin role required")
        return redact_response(await handler(request))

    return middleware
