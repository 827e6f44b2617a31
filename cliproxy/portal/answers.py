"""Answers shared by the account endpoints and the admin ones: refusals as JSON, spend roll-ups.

`refusal` turns the accounts store's `AccountsError` into the HTTP error a client sees
(`{"error": message}`, with `Retry-After` when waiting helps); the `accounts_refusals` middleware
does it for every handler of the account and admin apps. The spend functions add up a
user's keys (per-user figures are the sum of their keys' counters) and describe a team's budget.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from cliproxy import jsonio
from cliproxy.accounts.model import AccountKey, User
from cliproxy.accounts.rules import AccountsError, identity_of
from cliproxy.accounts.service import Accounts
from cliproxy.policy import KeyPolicy
from cliproxy.policy.state import KeyRef
from cliproxy.policy.teams import team_status

_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    410: web.HTTPGone,
    429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,  # the cluster's shared state (Redis) is down
}


def refusal(exc: AccountsError) -> web.HTTPException:
    cls = _STATUS.get(exc.status, web.HTTPBadRequest)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return cls(text=jsonio.dumps({"error": exc.message}).decode(), content_type="application/json", headers=headers)


@web.middleware
async def accounts_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Any `AccountsError` a handler lets out becomes its refusal, so handlers raise and never wrap."""
    try:
        return await handler(request)
    except AccountsError as exc:
        raise refusal(exc) from None


def json_answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=jsonio.dumps(data), status=status, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def key_usage(policy: KeyPolicy, key: AccountKey, now: float) -> dict[str, Any]:
    """One key's figures this budget period (revoked keys too: what they spent still counts)."""
    figures = await policy.state.usage(KeyRef(bytes.fromhex(key.digest), key.key_id), key.budget_period, now)
    return {
        "requests_today": figures.requests_today,
        "tokens_today": figures.tokens_today,
        "requests_this_period": figures.requests_this_period,
        "tokens_this_period": figures.tokens_this_period,
        "cost_usd_this_period": round(figures.cost_usd_this_period, 6),
    }


async def user_spend(accounts: Accounts, policy: KeyPolicy, user: User) -> dict[str, Any]:
    """A user's keys with their figures, and the totals over them."""
    now = time.time()
    keys = []
    totals = {"requests_this_period": 0, "tokens_this_period": 0, "cost_usd_this_period": 0.0}
    for key in accounts.keys_of(user.email):
        usage = await key_usage(policy, key, now)
        keys.append({**key.public(), "usage": usage, "status": key_status(key, now)})
        for name in totals:
            totals[name] += usage[name]
    totals["cost_usd_this_period"] = round(totals["cost_usd_this_period"], 6)
    return {"keys": keys, "totals": totals}


def key_status(key: AccountKey, now: float) -> str:
    if key.revoked:
        return "revoked"
    if key.expires is not None and key.expires <= now:
        return "expired"
    return "active"


async def team_figures(accounts: Accounts, policy: KeyPolicy, name: str) -> dict[str, Any] | None:
    rules = accounts.team_rules(name)
    if rules is None:
        return None
    return await team_status(policy.teams, rules, time.time())


async def whoami_extra(accounts: Accounts, policy: KeyPolicy, key_id: str) -> dict[str, Any] | None:
    """What `whoami` adds for a member's key or CLI token: the user, their role and team, the key's age."""
    key = accounts.owners.get(key_id)
    if key is None:
        return None
    user = accounts.users.get(key.email)
    if user is None:
        return None
    now = time.time()
    identity = identity_of(key, user, accounts.team_rules(key.team) if key.team else None)
    account: dict[str, Any] = {
        "user": user.email,
        "role": user.role,
        "team": user.team or None,
        "key": {
            "id": key.id,
            "name": key.name,
            "kind": key.kind,
            "created": key.created,
            "age_seconds": round(now - key.created),
            "expires": key.expires,
            "expires_in_seconds": round(key.expires - now) if key.expires is not None else None,
        },
        "read_only": identity.read_only,
    }
    if user.team:
        account["team_budget"] = await team_figures(accounts, policy, user.team)
    return account
