"""`POST /api-call`: an HTTP request on behalf of the web panel, with a credential's token.

The panel's quota pages call provider endpoints (usage, limits) with the token of one credential:
`$TOKEN$` in a header value becomes that credential's token, refreshed first when it has expired.
Admin only, like every write: the caller gets to use the token without seeing it.

Body: `{"auth_index", "method", "url", "proxy_url"?, "header"?: {name: value}, "data"?: "raw body"}`
(`authIndex` and `AuthIndex` are accepted too). A `Host` entry overrides the request host. The
proxy is the request's `proxy_url`, else the credential's, else the global `proxy-url`, else a
direct connection (environment proxies are not used). 60 s timeout. Answers
`{"status_code", "header": {name: [values]}, "body": text}`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from cliproxy.config.model import check_proxy_url
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response, read_json
from cliproxy.routing.credentials import Credential
from cliproxy.runtime import Runtime
from cliproxy.server.services import SERVICES

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

TOKEN_PLACEHOLDER = "$TOKEN$"
TIMEOUT = aiohttp.ClientTimeout(total=60)
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def find_credential(runtime: Runtime, auth_index: str) -> Credential | None:
    return next((c for c in runtime.catalog.credentials if c.auth_index == auth_index), None)


async def credential_token(request: web.Request, cred: Credential) -> str:
    """The token a provider accepts for `cred`: the OAuth access token (refreshed when expired),
    else the API key, else the file's `token`, `id_token` or `cookie`."""
    source = cred.source
    if source is None:
        return cred.api_key
    service = request.config_dict[SERVICES].credentials
    token = ""
    if service is not None and service.started:
        try:
            token = await service.access_token(source)
        except Exception as exc:  # a failed refresh: say so, never with the token
            log.warning("api-call: token refresh for %s failed: %s", cred.id, type(exc).__name__)
            raise api_error(400, "auth token refresh failed") from None
    metadata = getattr(source, "metadata", {}) or {}
    for candidate in (token, cred.api_key, metadata.get("token"), metadata.get("id_token"), metadata.get("cookie")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return ""


def _headers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise api_error(400, "invalid body")
    return {str(k): str(v) for k, v in raw.items() if str(k).strip()}


@routes.post("/api-call")
async def api_call(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    method = str(body.get("method") or "").strip().upper()
    if not method:
        raise api_error(400, "missing method")
    url = str(body.get("url") or "").strip()
    if not url:
        raise api_error(400, "missing url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise api_error(400, "invalid url")
    proxy_url = str(body.get("proxy_url") or "").strip()
    try:
        check_proxy_url(proxy_url)
    except ValueError:
        raise api_error(400, "invalid proxy_url") from None
    headers = _headers(body.get("header"))
    data = body.get("data")
    payload = data.encode() if isinstance(data, str) else None

    runtime = request.config_dict[SERVICES].holder.current
    auth_index = next((body[k] for k in ("auth_index", "authIndex", "AuthIndex") if body.get(k)), "")
    cred = find_credential(runtime, str(auth_index).strip()) if auth_index else None
    if any(TOKEN_PLACEHOLDER in v for v in headers.values()):
        token = await credential_token(request, cred) if cred is not None else ""
        if not token:
            raise api_error(400, "auth token not found")
        headers = {k: v.replace(TOKEN_PLACEHOLDER, token) for k, v in headers.items()}
    if not proxy_url:
        proxy_url = (cred.proxy_url if cred is not None else "") or runtime.config.proxy_url or "direct"

    session, proxy = request.config_dict[SERVICES].upstreams.session_for(proxy_url, url)
    try:
        async with session.request(method, url, headers=headers, data=payload, proxy=proxy, timeout=TIMEOUT) as r:
            content = await r.content.read(MAX_RESPONSE_BYTES)
            answer_headers: dict[str, list[str]] = {}
            for name, value in r.headers.items():
                answer_headers.setdefault(str(name), []).append(value)
            status = r.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise api_error(502, "request failed", message=f"{type(exc).__name__}: {exc}") from None
    text = content.decode("utf-8", errors="replace")
    return json_response({"status_code": status, "header": answer_headers, "body": text})
