"""The front door: CORS, OPTIONS, safe mode and client-key checks, in one middleware.

One middleware instead of a chain keeps the per-request cost to a single extra call on the hot
path. Order for every request: OPTIONS → 204 (before any auth, for browser preflights); `/v1*`,
`/v1beta*`, `/openai/v1*`, `/backend-api/codex*` → safe mode 403, then the client key;
everything else passes to its handler (management has its own guard).
"""

from __future__ import annotations

from random import getrandbits
from time import time
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, istr

from cliproxy import jsonio
from cliproxy.api.errors import dialect_error
from cliproxy.clientkeys import OPEN_IDENTITY, ClientIdentity, KeyTable
from cliproxy.runtime import RuntimeHolder
from cliproxy.translate import Dialect

CLIENT = web.RequestKey("client", ClientIdentity)  # set for every authenticated API request
REQUEST_ID = web.RequestKey("request_id", str)  # 8 hex, set for every request; sent as X-Request-Id

CORS_HEADERS: CIMultiDict[str] = CIMultiDict(
    {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "*",
        "Access-Control-Expose-Headers": (
            "X-CPA-TRACE-ID, X-CPA-VERSION, X-CPA-COMMIT, X-CPA-BUILD-DATE, X-CPA-SUPPORT-PLUGIN, "
            "Location, Retry-After, X-Request-Id, OpenAI-Request-Id"
        ),
    }
)
PROTECTED_PREFIXES = ("/v1", "/backend-api/codex", "/openai/v1")
WS_RELAY_PATH = "/v1/ws"  # open when `ws-auth: false`; every other /v1 WebSocket needs a key
SAFE_MODE_BODY = jsonio.dumps(
    {
        "error": "unsafe_example_api_key",
        "message": (
            "Proxy API endpoints are disabled because api-keys contains the template values "
            "your-api-key-1..3. Replace them with your own keys in the config file (or through "
            "PUT /v0/management/api-keys), then retry."
        ),
    }
)
_AUTHORIZATION = istr("Authorization")
_X_GOOG_API_KEY = istr("X-Goog-Api-Key")
_X_API_KEY = istr("X-Api-Key")
_ANTHROPIC_VERSION = istr("Anthropic-Version")
_USER_AGENT = istr("User-Agent")
_X_REQUEST_ID = istr("X-Request-Id")
NO_MEMBERS = KeyTable({})


def route_dialect(request: web.Request) -> Dialect:
    """Which dialect's error shape a client on this route understands."""
    path = request.path
    if path.startswith("/v1/messages"):
        return Dialect.CLAUDE
    if path.startswith("/v1beta"):
        return Dialect.GEMINI
    if path.startswith("/v1/models"):
        headers = request.headers
        if ":" in path:
            return Dialect.GEMINI
        if _ANTHROPIC_VERSION in headers or headers.get(_USER_AGENT, "").startswith(("claude-cli", "claude-code")):
            return Dialect.CLAUDE
        if _X_GOOG_API_KEY in headers:
            return Dialect.GEMINI
        return Dialect.CHAT
    if "responses" in path:
        return Dialect.RESPONSES
    return Dialect.CHAT


def presented_keys(request: web.Request) -> list[str]:
    """The key sources CLIProxyAPI reads, in its precedence order: `Authorization` (Bearer or bare),
    `X-Goog-Api-Key`, `X-Api-Key`, `?key=`, `?auth_token=` (empty values skipped)."""
    found: list[str] = []
    headers = request.headers
    auth = headers.get(_AUTHORIZATION)
    if auth:
        scheme, _, token = auth.partition(" ")
        found.append(token.strip() if scheme.lower() == "bearer" and token else auth)
    for header in (_X_GOOG_API_KEY, _X_API_KEY):
        value = headers.get(header)
        if value:
            found.append(value)
    if request.query_string:
        query = request.query
        for param in ("key", "auth_token"):
            value = query.get(param)
            if value:
                found.append(value)
    return found


def key_refusal(identity: ClientIdentity) -> str | None:
    """Why a known key object may not be used now (disabled, expired), or None. Plain keys never get here."""
    policy = identity.policy
    if policy is not None and policy.disabled:
        return "API key disabled"
    return expiry_refusal(identity)


def expiry_refusal(identity: ClientIdentity) -> str | None:
    """Why a key is too old to use now, or None; the account portal refuses login tokens by it too."""
    if identity.expires_at is not None and time() >= identity.expires_at:
        if identity.login_token:
            return "login token expired: run `cliproxy login` again to get a new one"
        return "API key expired"
    return None


def authenticate(keys: KeyTable, request: web.Request, members: KeyTable = NO_MEMBERS) -> ClientIdentity | str:
    """The matching identity, or the 401 message (`Missing API key` / `Invalid API key` /
    `API key disabled` / `API key expired`).

    `keys` are the config's; `members` the keys users made for themselves (and their CLI login
    tokens), asked only when the config's table does not know the key, so a config key pays nothing.
    """
    if keys.open and members.open:
        return OPEN_IDENTITY
    auth = request.headers.get(_AUTHORIZATION)
    if auth and auth.startswith("Bearer "):  # the common case: one lookup, no list
        token = auth[7:].strip()
        identity = keys.lookup(token)
        if identity is None and members.by_digest:
            identity = members.lookup(token)
        if identity is not None and (identity.policy is None or key_refusal(identity) is None):
            return identity
    candidates = presented_keys(request)
    if not candidates:
        return "Missing API key"
    refused: str | None = None
    for candidate in candidates:
        identity = keys.lookup(candidate)
        if identity is None and members.by_digest:
            identity = members.lookup(candidate)
        if identity is not None:
            if identity.policy is None:  # plain-string key: nothing more to check
                return identity
            reason = key_refusal(identity)
            if reason is None:
                return identity
            refused = refused or reason  # a later source may still hold a usable key
    return refused or "Invalid API key"


class MemberKeys(Protocol):
    """Where the front door finds the keys users made (the accounts service): one table per change."""

    table: KeyTable


class _NoMembers:
    table = KeyTable({})


def front_door(*, holder: RuntimeHolder, members: MemberKeys | None = None) -> Middleware:
    """Build the middleware: OPTIONS → 204, then safe mode and client keys on the API prefixes."""
    book: MemberKeys = members if members is not None else _NoMembers()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID] = new_request_id()
        if request.method == "OPTIONS":
            return web.Response(status=204)
        path = request.path
        if path.startswith(PROTECTED_PREFIXES):
            runtime = holder.current
            if runtime.safe_mode:
                return web.Response(
                    body=SAFE_MODE_BODY,
                    status=403,
                    content_type="application/json",
                    headers={"X-CPA-SAFE-MODE": "example-api-key"},
                )
            if path == WS_RELAY_PATH and not runtime.config.ws_auth:
                request[CLIENT] = OPEN_IDENTITY
                return await handler(request)
            identity = authenticate(runtime.keys, request, book.table)
            if isinstance(identity, str):
                dialect = route_dialect(request)
                code = "invalid_api_key" if dialect in (Dialect.CHAT, Dialect.RESPONSES) else None
                return dialect_error(dialect, 401, identity, err_type="authentication_error", code=code)
            request[CLIENT] = identity
        return await handler(request)

    return middleware


def new_request_id() -> str:
    """8 hex characters, as CLIProxyAPI's request ids: unique enough to find one request in the logs, and cheap."""
    return f"{getrandbits(32):08x}"


def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CORS and the request id on every response, streams and errors too (from the response hook)."""
    response.headers.extend(CORS_HEADERS)
    response.headers[_X_REQUEST_ID] = request.get(REQUEST_ID) or new_request_id()
