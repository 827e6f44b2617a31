"""`/teams` and `/access-groups`: what a team's members may use and spend.

An access group is a name for a list of model patterns, defined once and named by any number of
teams. A team has its access groups, a budget in USD and/or credits per period, a ceiling for the
limits of the keys its members make, and a state (`active`, `paused`, `suspended`).

    GET    /access-groups               {"access-groups": {name: [patterns]}}
    PUT    /access-groups/{name}        {"models": [patterns]}
    DELETE /access-groups/{name}        (refused while a team uses it)
    GET    /teams                       every team with its members, spend and what is left
    POST   /teams                       {"name", "state"?, "access-groups"?, "budget-usd"?, "budget-credits"?,
                                         "credits-per-usd"?, "budget-period"?, "key-ceiling"?, "allow-unknown-price"?}
    PATCH  /teams/{name}                any of those fields
    DELETE /teams/{name}                (refused while it has members)
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from cliproxy.accounts.model import Team
from cliproxy.accounts.rules import AccountsError, team_with, valid_name
from cliproxy.management.accounts_api import accounts_of
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response, read_json
from cliproxy.portal.answers import team_figures
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


@routes.get("/access-groups")
async def list_groups(request: web.Request) -> web.Response:
    accounts = accounts_of(request)
    return json_response({"access-groups": {name: list(models) for name, models in sorted(accounts.groups.items())}})


@routes.put("/access-groups/{name}")
async def put_group(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    body = await read_json(request)
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
        raise api_error(400, "models: a list of model ids or glob patterns")
    await accounts.put_group(request.match_info["name"], tuple(dict.fromkeys(m.strip() for m in models)))
    return json_response({"status": "ok"})


@routes.delete("/access-groups/{name}")
async def delete_group(request: web.Request) -> web.Response:
    require_admin(request)
    await accounts_of(request).delete_group(request.match_info["name"])
    return json_response({"status": "ok"})


async def team_view(request: web.Request, team: Team) -> dict[str, Any]:
    services = request.config_dict[SERVICES]
    accounts = services.accounts
    return {
        **team.public(),
        "members": sorted(u.email for u in accounts.members(team.name)),
        "status": await team_figures(accounts, services.policy, team.name),
    }


@routes.get("/teams")
async def list_teams(request: web.Request) -> web.Response:
    accounts = accounts_of(request)
    return json_response({"teams": [await team_view(request, t) for _, t in sorted(accounts.teams.items())]})


@routes.post("/teams")
async def create_team(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    fields = {k: v for k, v in body.items() if k != "name"}
    name = valid_name(body.get("name"), "name")
    if name in accounts.teams:
        raise AccountsError(409, f"a team named {name!r} already exists")
    team = await accounts.put_team(team_with(Team(name, created=time.time()), fields, accounts.groups))
    return json_response(await team_view(request, team), status=201)


@routes.patch("/teams/{name}")
async def update_team(request: web.Request) -> web.Response:
    require_admin(request)
    accounts = accounts_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise api_error(400, "invalid body")
    current = accounts.teams.get(request.match_info["name"])
    if current is None:
        raise api_error(404, "no such team")
    team = await accounts.put_team(team_with(current, body, accounts.groups))
    return json_response(await team_view(request, team))


@routes.delete("/teams/{name}")
async def delete_team(request: web.Request) -> web.Response:
    require_admin(request)
    await accounts_of(request).delete_team(request.match_info["name"])
    return json_response({"status": "ok"})
