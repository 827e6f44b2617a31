"""Onboarding from an invitation link: see who it is for, set a password, be signed in.

    POST /invitations/lookup   {"token"} → {"email", "role", "team", "expires", "min_password_length"}
    POST /invitations/accept   {"token", "password"} → the new user, signed in (session cookie)

The token travels in the link's fragment (`/management.html#/invite/<token>`), which browsers
never send to a server, and then only in these request bodies, never in a URL, so it reaches no
access or request log. It is single use: a second use answers 410, as does an expired one.
"""

from __future__ import annotations

from aiohttp import web

from cliproxy.management.http import read_json, text_field
from cliproxy.portal.answers import json_answer
from cliproxy.portal.session_api import signed_in
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


@routes.post("/invitations/lookup")
async def lookup(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    body = await read_json(request)
    invitation = services.accounts.invitation(text_field(body, "token"))
    return json_answer(
        {
            "email": invitation.email,
            "role": invitation.role,
            "team": invitation.team,
            "expires": invitation.expires,
            "min_password_length": services.holder.current.config.password_min_length,
        }
    )


@routes.post("/invitations/accept")
async def accept(request: web.Request) -> web.Response:
    accounts = request.config_dict[SERVICES].accounts
    body = await read_json(request)
    user = await accounts.accept(text_field(body, "token"), text_field(body, "password"))
    return await signed_in(request, user, "invitation")
