"""Single sign-on in the browser (see `accounts.oidc` for the checks).

    GET /sso/start?after=#/…   → 302 to the provider (with a cookie binding the sign-in to this browser)
    GET /sso/callback          ← the provider's redirect; → 302 to the panel, signed in

The binding cookie is `SameSite=Lax` (the provider's redirect is a top-level navigation from
another site, which a `Strict` cookie would not follow); it only says which browser started the
sign-in, so a sign-in link made by someone else cannot sign this browser in to their account.
Failures land on the panel's sign-in page with the reason in the URL fragment.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from aiohttp import web

from cliproxy.accounts.oidc import PENDING_SECONDS, SSOError
from cliproxy.accounts.rules import AccountsError
from cliproxy.portal.caller import session_caller
from cliproxy.portal.session_api import secure_cookies, set_session_cookie
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

BINDING_COOKIE = "cliproxy_sso"
CALLBACK_PATH = "/v0/account/sso/callback"
PANEL = "/management.html"


def _after(value: str) -> str:
    """Only a place inside the panel (a fragment), so the sign-in cannot redirect anywhere else."""
    if value.startswith("#/") and not any(c in value for c in "\r\n\\"):
        return value
    return "#/"


def _to_panel(fragment: str) -> web.HTTPFound:
    return web.HTTPFound(PANEL + fragment)


def _failed(message: str) -> web.HTTPFound:
    return _to_panel("#/signin?error=" + quote(message, safe=""))


@routes.get("/sso/start")
async def start(request: web.Request) -> web.StreamResponse:
    services = request.config_dict[SERVICES]
    sso = services.holder.current.config.sso
    if not sso.enabled:
        raise web.HTTPNotFound(text='{"error":"single sign-on is not configured"}', content_type="application/json")
    oidc = services.accounts.oidc
    binding = secrets.token_urlsafe(32)
    redirect_uri = f"{request.scheme}://{request.host}{CALLBACK_PATH}"
    try:
        provider = await oidc.provider(sso.issuer)
        _, url = await oidc.start(provider, sso, redirect_uri, _after(request.query.get("after", "")), binding)
    except SSOError as exc:
        return _failed(f"single sign-on is unavailable: {exc}")
    response = web.HTTPFound(url)
    response.set_cookie(
        BINDING_COOKIE,
        binding,
        path="/v0/account/sso",
        max_age=int(PENDING_SECONDS),
        httponly=True,
        secure=secure_cookies(request),
        samesite="Lax",
    )
    return response


@routes.get("/sso/callback")
async def callback(request: web.Request) -> web.StreamResponse:
    services = request.config_dict[SERVICES]
    accounts = services.accounts
    sso = services.holder.current.config.sso
    query = request.query
    try:
        pending = await accounts.oidc.take(query.get("state", ""), request.cookies.get(BINDING_COOKIE, ""))
        if query.get("error"):
            raise SSOError(f"the provider refused: {query.get('error_description') or query['error']}")
        if not sso.enabled:
            raise SSOError("single sign-on is not configured")
        provider = await accounts.oidc.provider(sso.issuer)
        identity = await accounts.oidc.finish(provider, sso, pending, query.get("code", ""))
        user = await accounts.sso_user(identity, sso)
    except (SSOError, AccountsError) as exc:
        return _failed(str(exc))
    previous = session_caller(request, accounts)
    cookie, session = await accounts.start_session(user, "sso", replaces=previous.session if previous else None)
    response = _to_panel(pending.after)
    set_session_cookie(request, response, cookie, session)
    response.del_cookie(BINDING_COOKIE, path="/v0/account/sso")
    return response
