"""`/users` and `/invitations`: who may sign in, with which role and team (the management secret and
`admin` users; `admin-viewer` users and viewer keys read).

    GET    /users                       every user (never a password hash) with their spend this period
    POST   /users                       {"email", "role", "team", "password"?} → the user
    PATCH  /users/{email}               {"role"?, "team"?, "disabled"?}
    DELETE /users/{email}               their sessions end, their keys are revoked
    GET    /users/{email}/keys          a user's keys and what each spent
    GET    /invitations                 open and used invitations (never the link)
    POST   /invitations                 {"email", "role", "team"} → {"link", "expires"}: the link is shown once
    DELETE /invitations/{id}            withdraw an invitation
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy.accounts.rules import valid_role
from cliproxy.accounts.service import Accounts
from cliproxy.management.guard import MGMT_USER, require_admin
from cliproxy.management.http import api_error, json_response, panel_link, read_json
from cliproxy.portal.answers import user_spend
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

USER_FIELDS = frozenset({"role", "team", "disabled"})


def accounts_of(request: web.Request) -> Accounts:
    accounts = request.config_dict[SERVICES].accounts
    if not accounts.enabled:
        raise api_error(404, "users and teams are off on this proxy (accounts-db: off)")
    return accounts


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise api_error(400, "invalid body")
    return data


@routes.get("/users")
async def list_users(request: web.Request) -> web.Response:
    accounts = accounts_of(request)
    policy = request.config_dict[SERVICES].policy
    users = []
    for user in sorted(accounts.users.values(), key=lambda u: u.email):
        spend = await user_spend(accounts, policy, user)
        live = [k for k in spend["keys"] if k["status"] == "active"]
        users.append({**user.public(), "keys": len(live), "spend": spend["totals"]})
    return json_response({"users": users})


@routes.post("/users")
async def create_user(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    body = _body(await read_json(request))
    user = await accounts.create_user(
        body.get("email", ""),
        valid_role(body.get("role", "user")),
        body.get("team") or "",
        password=str(body.get("password") or ""),
    )
    return json_response(user.public(), status=201)


@routes.patch("/users/{email}")
async def update_user(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    body = _body(await read_json(request))
    unknown = sorted(set(body) - USER_FIELDS)
    if unknown:
        raise api_error(400, f"unknown user fields: {', '.join(unknown)} (known: role, team, disabled)")
    changes: dict[str, Any] = {}
    if "role" in body:
        changes["role"] = valid_role(body["role"])
    if "team" in body:
        changes["team"] = body["team"] or ""
    if "disabled" in body:
        changes["disabled"] = bool(body["disabled"])
    user = await accounts.update_user(request.match_info["email"], **changes)
    return json_response(user.public())


@routes.delete("/users/{email}")
async def delete_user(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    email = request.match_info["email"]
    if email.strip().lower() == request.get(MGMT_USER, ""):
        raise api_error(400, "you cannot delete your own account")
    await accounts.delete_user(email)
    return json_response({"status": "ok"})


@routes.get("/users/{email}/keys")
async def user_keys(request: web.Request) -> web.Response:
    accounts = accounts_of(request)
    user = accounts.user(request.match_info["email"])
    return json_response(await user_spend(accounts, request.config_dict[SERVICES].policy, user))


@routes.get("/invitations")
async def list_invitations(request: web.Request) -> web.Response:
    accounts = accounts_of(request)
    items = sorted(accounts.invitations.values(), key=lambda i: i.created, reverse=True)
    return json_response({"invitations": [i.public() for i in items]})


@routes.post("/invitations")
async def create_invitation(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    body = _body(await read_json(request))
    token, invitation = await accounts.invite(
        body.get("email", ""),
        valid_role(body.get("role", "user")),
        body.get("team") or "",
        request.get(MGMT_USER, ""),
    )
    return json_response({**invitation.public(), "link": panel_link(request, f"invite/{token}")}, status=201)


@routes.delete("/invitations/{id}")
async def withdraw_invitation(request: web.Request) -> web.Response:
    require_admin(request)
    await accounts_of(request).withdraw(request.match_info["id"])
    return json_response({"status": "ok"})
