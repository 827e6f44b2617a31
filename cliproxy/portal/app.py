"""The `/v0/account` sub-application: a member's own surface, behind its own guard.

The guard runs for this sub-app only (the client hot path never pays for it). Per request:
the store must be on (404 otherwise); public paths (sign-in, invitations, SSO, the CLI's token
endpoints) pass, refusing cross-site state changes; every other path needs a caller: a CLI login
token in `Authorization: Bearer` (never sent by a browser on its own), else the panel's session
cookie, whose state-changing calls must carry the session's CSRF token.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from cliproxy import jsonio
from cliproxy.portal import cli_api, invite_api, keys_api, session_api, sso_api
from cliproxy.portal.answers import accounts_refusals
from cliproxy.portal.caller import CALLER, READ_METHODS, csrf_refusal, same_origin, session_caller, token_caller
from cliproxy.server.services import SERVICES

PREFIX = "/v0/account"
RESOURCES = (session_api, keys_api, invite_api, cli_api, sso_api)
PUBLIC_PATHS = frozenset(
    PREFIX + path
    for path in (
        "/login-options",
        "/login",
        "/invitations/lookup",
        "/invitations/accept",
        "/sso/start",
        "/sso/callback",
        "/cli/token",
        "/cli/device",
    )
)
ACCOUNT_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        body=jsonio.dumps({"error": message}), status=status, content_type="application/json", headers=ACCOUNT_HEADERS
    )


def account_guard() -> Middleware:
    """Build the middleware described in the module docstring."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        accounts = request.config_dict[SERVICES].accounts
        if not accounts.enabled:
            return _error(404, "users and teams are off on this proxy (accounts-db: off)")
        if request.path in PUBLIC_PATHS:
            if request.method not in READ_METHODS and not same_origin(request):
                return _error(403, "cross-site request refused")  # e.g. a sign-in planted by another site
            return await handler(request)
        found = token_caller(request, accounts)
        if isinstance(found, str):
            return _error(401, found)
        caller = found if found is not None else session_caller(request, accounts)
        if caller is None:
            return _error(401, "sign in first")
        refused = csrf_refusal(request, accounts, caller)
        if refused is not None:
            return _error(403, refused)
        request[CALLER] = caller
        return await handler(request)

    return middleware


async def add_account_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Nothing an account answer holds may be cached or sniffed."""
    response.headers.update(ACCOUNT_HEADERS)


def build_account_app() -> web.Application:
    app = web.Application(middlewares=[account_guard(), accounts_refusals])
    app.on_response_prepare.append(add_account_headers)
    for resource in RESOURCES:
        app.add_routes(resource.routes)
    return app
