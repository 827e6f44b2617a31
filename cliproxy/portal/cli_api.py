"""The CLI's sign-in endpoints (`cliproxy login --proxy URL`); see `accounts.cli_login` for the flows.

    POST /cli/authorize       (signed in) {"redirect_uri", "state", "code_challenge"} → {"redirect"}
    POST /cli/device          {} → {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
                              (no sign-in needed, so limited per client address)
    POST /cli/device/approve  (signed in) {"user_code"}
    POST /cli/token           {"grant_type": "authorization_code", "code", "code_verifier", "redirect_uri"}
                              or {"grant_type": "device_code", "device_code"}
                              → {"token", "expires", "user", "role", "team"}; while a device code waits:
                              400 {"error": "authorization_pending"}

The token is a personal client key that expires after `cli-token-expiration-hours`.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from aiohttp import web

from cliproxy.accounts.cli_login import CODE_SECONDS, DEVICE_INTERVAL_SECONDS
from cliproxy.accounts.model import User
from cliproxy.accounts.rules import AccountsError
from cliproxy.management.guard import client_ip
from cliproxy.management.http import panel_link, read_json, text_field
from cliproxy.portal.answers import json_answer
from cliproxy.portal.caller import CALLER
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


@routes.post("/cli/authorize")
async def authorize(request: web.Request) -> web.Response:
    accounts = request.config_dict[SERVICES].accounts
    body = await read_json(request)
    redirect_uri = text_field(body, "redirect_uri")
    code = await accounts.cli.authorize(
        request[CALLER].user.email, redirect_uri, text_field(body, "code_challenge"), time.time()
    )
    query = urlencode({"code": code, "state": text_field(body, "state")})
    return json_answer({"redirect": f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"})


@routes.post("/cli/device")
async def start_device(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    accounts = services.accounts
    now = time.time()
    if not accounts.device_starts.allow(client_ip(request, services.holder.current), now):
        raise AccountsError(429, "too many device codes from this address: try again in a minute")
    device_code, user_code = await accounts.cli.start_device(now)
    return json_answer(
        {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": panel_link(request, "device"),
            "expires_in": int(CODE_SECONDS),
            "interval": DEVICE_INTERVAL_SECONDS,
        }
    )


@routes.post("/cli/device/approve")
async def approve_device(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    accounts = services.accounts
    body = await read_json(request)
    address = client_ip(request, services.holder.current)
    guesser = "device-code:" + request[CALLER].user.email  # wrong codes count per user and per address
    now = time.time()
    if await accounts.signin_limits.wait(address, guesser):
        raise AccountsError(429, "too many wrong codes: try again later")
    try:
        await accounts.cli.approve_device(text_field(body, "user_code"), request[CALLER].user.email, now)
    except AccountsError:
        await accounts.signin_limits.failed(address, guesser)  # guessing codes counts like guessing passwords
        raise
    return json_answer({"status": "ok"})


async def issue(request: web.Request, user: User) -> web.Response:
    accounts = request.config_dict[SERVICES].accounts
    token, key = await accounts.create_cli_token(user)
    return json_answer(
        {
            "token": token,
            "token_type": "Bearer",
            "expires": key.expires,
            "created": key.created,
            "user": user.email,
            "role": user.role,
            "team": user.team or None,
        }
    )


@routes.post("/cli/token")
async def token(request: web.Request) -> web.Response:
    accounts = request.config_dict[SERVICES].accounts
    body = await read_json(request)
    grant = text_field(body, "grant_type")
    now = time.time()
    if grant == "authorization_code":
        email: str | None = await accounts.cli.exchange(
            text_field(body, "code"), text_field(body, "code_verifier"), text_field(body, "redirect_uri"), now
        )
    elif grant == "device_code":
        email = await accounts.cli.poll(text_field(body, "device_code"), now)
        if email is None:
            return json_answer({"error": "authorization_pending", "interval": DEVICE_INTERVAL_SECONDS}, 400)
    else:
        raise AccountsError(400, "grant_type: authorization_code or device_code")
    assert email is not None
    user = accounts.users.get(email)
    if user is None or user.disabled:
        raise AccountsError(403, "this account is disabled or gone")
    return await issue(request, user)
