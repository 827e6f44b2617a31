"""Signing in and out, and who am I.

    GET  /login-options     {"password": bool, "sso": bool}: which sign-in the panel offers
    POST /login             {"email", "password"} → session cookie + {"user", "csrf"}
    POST /logout            ends the session on the server, clears the cookie
    GET  /me                the caller, their team's budget, the models they may use, the CSRF token
    PUT  /me/password       {"current", "new"}: change one's own password

The session cookie is `HttpOnly`, `SameSite=Strict`, `Secure` when the proxy serves TLS, and
names a session kept on the server; every sign-in makes a new one and ends the one the browser
had. Failed sign-ins are counted per address and per account (see `accounts.passwords`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy.accounts.model import User, may_change_own, may_read_all
from cliproxy.accounts.service import Accounts
from cliproxy.accounts.sessions import COOKIE_NAME, Session
from cliproxy.management.guard import client_ip
from cliproxy.management.http import read_json, text_field
from cliproxy.portal.answers import json_answer, team_figures
from cliproxy.portal.caller import CALLER, session_caller
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


def secure_cookies(request: web.Request) -> bool:
    return request.secure or request.config_dict[SERVICES].holder.current.config.tls.enable


def set_session_cookie(request: web.Request, response: web.StreamResponse, cookie: str, session: Session) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        path="/",
        max_age=max(0, int(session.expires - session.created)),
        httponly=True,  # no script can read it
        secure=secure_cookies(request),
        samesite="Strict",  # never sent with a request another site starts
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/", secure=secure_cookies(request), httponly=True, samesite="Strict")


async def signed_in(request: web.Request, user: User, via: str, extra: dict[str, Any] | None = None) -> web.Response:
    """Start a new session for `user` (ending the one the browser had) and answer with its cookie."""
    accounts = request.config_dict[SERVICES].accounts
    previous = session_caller(request, accounts)
    cookie, session = await accounts.start_session(
        user, via, replaces=previous.session if previous is not None else None
    )
    response = json_answer({"user": user.public(), "csrf": accounts.sessions.csrf_token(session), **(extra or {})})
    set_session_cookie(request, response, cookie, session)
    return response


@routes.get("/login-options")
async def login_options(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    config = services.holder.current.config
    users = bool(services.accounts.users)  # no users yet: only the management key can sign in
    return json_answer({"password": users, "sso": config.sso.enabled, "sso_path": "/v0/account/sso/start"})


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    body = await read_json(request)
    address = client_ip(request, services.holder.current)
    user = await services.accounts.check_password(text_field(body, "email"), text_field(body, "password"), address)
    return await signed_in(request, user, "password")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    caller = request[CALLER]
    if caller.session is not None:
        await request.config_dict[SERVICES].accounts.end_session(caller.session)
    response = json_answer({"status": "ok"})
    clear_session_cookie(request, response)
    return response


async def describe(accounts: Accounts, request: web.Request, user: User) -> dict[str, Any]:
    services = request.config_dict[SERVICES]
    return {
        "user": user.public(),
        "may_create_keys": may_change_own(user.role),
        "may_manage": may_read_all(user.role),
        "team": await team_figures(accounts, services.policy, user.team) if user.team else None,
        "models": list(accounts.allowed_models(user)) or ["*"],
        "cli_token_expiration_hours": services.holder.current.config.cli_token_expiration_hours,
    }


@routes.get("/me")
async def me(request: web.Request) -> web.Response:
    caller = request[CALLER]
    accounts = request.config_dict[SERVICES].accounts
    body = await describe(accounts, request, caller.user)
    if caller.session is not None:
        body["csrf"] = accounts.sessions.csrf_token(caller.session)
        body["session_expires"] = caller.session.expires
    return json_answer(body)


@routes.put("/me/password")
async def change_password(request: web.Request) -> web.Response:
    caller = request[CALLER]
    services = request.config_dict[SERVICES]
    accounts = services.accounts
    body = await read_json(request)
    if caller.user.password_hash:  # SSO users set a first password without one
        address = client_ip(request, services.holder.current)
        await accounts.check_password(caller.user.email, text_field(body, "current"), address)
    await accounts.set_password(caller.user.email, text_field(body, "new"))
    return json_answer({"status": "ok"})
