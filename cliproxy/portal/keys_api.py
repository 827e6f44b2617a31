"""A member's own keys, spend, team budget and models; nobody sees anyone else's.

GET    /keys        own keys (never the secret) with what each spent this period, and totals
POST   /keys        {"name", "models"?, "limits"?, "expires"?} → the key, shown once
DELETE /keys/{id}   revoke one of one's own keys (by id or name); others' keys are "not found"
GET    /usage       own spend: totals, per key, per day (last 30 days, from the usage database)
GET    /team        the team's budget or credits and what is left this period
GET    /models      the models the caller may use
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from aiohttp import web

from cliproxy.accounts.rules import AccountsError
from cliproxy.config.model import parse_expiry
from cliproxy.management.http import read_json
from cliproxy.portal.answers import json_answer, team_figures, user_spend
from cliproxy.portal.caller import CALLER
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

HISTORY_DAYS = 30


def expiry_of(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_expiry(value)
        except ValueError as exc:
            raise AccountsError(400, f"expires: {exc}") from None
    raise AccountsError(400, "expires: an ISO date or time")


@routes.get("/keys")
async def list_keys(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    return json_answer(await user_spend(services.accounts, services.policy, request[CALLER].user))


@routes.post("/keys")
async def create_key(request: web.Request) -> web.Response:
    accounts = request.config_dict[SERVICES].accounts
    body = await read_json(request)
    if not isinstance(body, dict):
        body = {}
    secret, key = await accounts.create_key(
        request[CALLER].user,
        body.get("name"),
        models=body.get("models"),
        limits=body.get("limits"),
        expires=expiry_of(body.get("expires")),
    )
    return json_answer({**key.public(), "key": secret}, status=201)


@routes.delete("/keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    accounts = request.config_dict[SERVICES].accounts
    key = await accounts.revoke_key(request[CALLER].user, request.match_info["id"])
    return json_answer(key.public())


@routes.get("/usage")
async def usage(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    user = request[CALLER].user
    spend = await user_spend(services.accounts, services.policy, user)
    mine = {k["key_id"] for k in spend["keys"]}
    days: dict[int, dict[str, Any]] = defaultdict(lambda: {"requests": 0, "tokens": 0, "cost_usd": 0.0})
    if services.usage_db is not None and mine:
        await services.usage_db.flush()  # what was just answered counts too
        rows = await services.usage_db.history(time.time() - HISTORY_DAYS * 86_400, 86_400, keys=mine)
        for start, _key_id, _model, requests, _failed, _over, tokens, cost in rows:
            day = days[start]
            day["requests"] += requests
            day["tokens"] += tokens
            day["cost_usd"] += cost
    history = [{"day": start, **{**v, "cost_usd": round(v["cost_usd"], 6)}} for start, v in sorted(days.items())]
    return json_answer({"user": user.email, **spend, "days": history})


@routes.get("/team")
async def team(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    user = request[CALLER].user
    figures = await team_figures(services.accounts, services.policy, user.team) if user.team else None
    return json_answer({"team": figures})


@routes.get("/models")
async def models(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    rules = services.accounts.team_rules(request[CALLER].user.team)
    runtime = services.holder.current
    ids = sorted(
        route.model
        for route in runtime.catalog.routes.values()
        if services.health.listable(route) and (rules is None or rules.allows(route.model))
    )
    return json_answer({"models": ids, "patterns": list(rules.models) if rules is not None else ["*"]})
