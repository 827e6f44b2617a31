"""Per-key policy: model scopes, per-minute rates, concurrency, daily tokens and budgets.

The front door already refused unknown, disabled and expired keys (401). What is left needs the
model and live counters, so routing asks `KeyPolicy.admit` once per request, after the model
resolved and before any upstream call. Each refusal is a `PolicyRefusal` a client can act on: 403
naming the model it may not use, 403 when its daily tokens or its budget are spent (the allowance
does not come back by retrying), 429 with `Retry-After` for the per-minute rate and the concurrency
cap (it does). Plain-string keys and key objects without limits cost nothing here:
`identity.limited` is False.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable
from typing import Any

from cliproxy.clientkeys import ClientIdentity
from cliproxy.config.model import ClientKey
from cliproxy.policy.ledger import DAY, iso, period_bounds
from cliproxy.policy.state import KeyPolicyState, KeyRef, LimitReached, Limits, Release
from cliproxy.policy.teams import (
    LocalTeamPolicyState,
    TeamPolicyState,
    TeamRefusal,
    TeamSpend,
    budget_refusal,
    exhausted_refusal,
    price_refusal,
    scope_refusal,
    state_refusal,
    team_status,
)
from cliproxy.pricing import Prices, PriceTable


class PolicyRefusal(Exception):
    """A request the key's policy does not allow; routing shapes it in the client's dialect."""

    def __init__(self, status: int, message: str, *, code: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def model_allowed(policy: ClientKey | None, model: str) -> bool:
    """Whether a key may use `model` (glob patterns, case-insensitive; no patterns = every model)."""
    if policy is None or not policy.models:
        return True
    name = model.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in policy.models)


def priced(prices: PriceTable, model: str, upstream_names: Iterable[str]) -> bool:
    """A route has a known price when its visible id has one, or every upstream name it may use has one."""
    if prices.price(model) is not None:
        return True
    names = list(upstream_names)
    return bool(names) and all(prices.price(n) is not None for n in names)


def money(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


def key_ref(identity: ClientIdentity) -> KeyRef:
    return KeyRef(identity.digest, identity.key_id)


def refusal_of(reached: LimitReached, identity: ClientIdentity, model: str, period: str) -> PolicyRefusal:
    """The message a client sees for the limit its request reached."""
    name = identity.name
    kind = reached.kind
    if kind == "unavailable":
        return PolicyRefusal(503, "shared state unavailable", code="shared_state_unavailable", retry_after=1)
    if kind == "tokens":
        return PolicyRefusal(
            403,
            f"daily token allowance of API key {name!r} is used up ({int(reached.used):,} of "
            f"{int(reached.limit):,} tokens today); it resets at {iso(reached.resets_at)}",
            code="token_allowance_exhausted",
        )
    if kind == "budget":
        return PolicyRefusal(
            403,
            f"budget of API key {name!r} is used up ({money(reached.used)} of {money(reached.limit)} "
            f"this {period}); it resets at {iso(reached.resets_at)}",
            code="budget_exhausted",
        )
    if kind == "price":
        return PolicyRefusal(
            403,
            f"the price of model {model!r} is unknown, so API key {name!r} (which has a budget) may "
            "not use it; set allow-unknown-price: true on the key to allow it",
            code="model_price_unknown",
        )
    if kind == "rate":
        return PolicyRefusal(
            429,
            f"API key {name!r} is limited to {int(reached.limit)} requests per minute; "
            f"retry in {reached.retry_after} s",
            code="rate_limit_exceeded",
            retry_after=reached.retry_after,
        )
    return PolicyRefusal(
        429,
        f"API key {name!r} already has {int(reached.used)} requests in flight (limit {int(reached.limit)}); "
        "retry when one finishes",
        code="concurrency_limit_exceeded",
        retry_after=reached.retry_after,
    )


def _refused(refusal: TeamRefusal) -> PolicyRefusal:
    return PolicyRefusal(refusal.status, refusal.message, code=refusal.code)


class KeyPolicy:
    """Enforces client-key policies against the counters in `state` and the prices in `prices`;
    a member's key also against its team's rules and the team's spend, which `state` checks in the
    same admission (`teams`, the team state `state` reads, answers `whoami`)."""

    __slots__ = ("prices", "state", "teams")

    def __init__(self, state: KeyPolicyState, prices: Prices, teams: TeamPolicyState | None = None) -> None:
        self.state = state
        self.prices = prices
        self.teams: TeamPolicyState = teams if teams is not None else LocalTeamPolicyState()

    def check_scope(self, identity: ClientIdentity, model: str) -> None:
        """Raise the 403 that names `model` when it is outside the key's `models` patterns.

        Routing also calls this for a model the catalog does not know, so a scoped key cannot tell
        models that exist from models that do not outside its scope. A member's key is first
        checked against its role and its team: a viewer may not use models, a paused or suspended
        team refuses with that reason, and the model must be in the team's access groups.
        """
        if identity.read_only:
            raise PolicyRefusal(
                403,
                "this account has a viewer role: it may see its keys and spend, not use models",
                code="role_read_only",
            )
        team = identity.team
        if team is not None:
            refusal = state_refusal(team) or scope_refusal(team, model)
            if refusal is not None:
                raise _refused(refusal)
        policy = identity.policy
        if policy is not None and not model_allowed(policy, model):
            raise PolicyRefusal(
                403,
                f"model {model!r} is not allowed for API key {identity.name!r} (allowed: {', '.join(policy.models)})",
                code="model_not_allowed",
            )

    async def admit(
        self,
        identity: ClientIdentity,
        model: str,
        upstream_names: Callable[[], Iterable[str]],
        *,
        action: str = "generate",
        now: float | None = None,
    ) -> Release | None:
        """Check `identity`'s policy for one request to `model`; returns the release of its concurrency
        slot (call it exactly once when the outcome finishes), or None. Raises `PolicyRefusal`."""
        policy = identity.policy
        if policy is None or not identity.limited:
            return None
        self.check_scope(identity, model)
        when = time.time() if now is None else now
        generate = action == "generate"
        known: bool | None = None  # the route has a price: looked up once, and only when a budget asks
        price_unknown = False
        if generate and policy.max_budget_usd is not None and not policy.allow_unknown_price:
            known = priced(await self.prices.get(), model, upstream_names())
            price_unknown = not known
        team = identity.team if generate else None
        if team is not None and not team.budgeted:
            team = None  # the state checks a team's spend (before the key's counters take a slot)
        team_price_unknown = False
        if team is not None and not team.allow_unknown_price:
            if known is None:
                known = priced(await self.prices.get(), model, upstream_names())
            team_price_unknown = not known
        limits = Limits(
            tokens_per_day=policy.max_tokens_per_day if generate else None,
            budget_usd=policy.max_budget_usd if generate else None,
            budget_period=policy.budget_period,
            requests_per_minute=policy.max_requests_per_minute,
            max_concurrent=policy.max_concurrent,
            price_unknown=price_unknown,
            team=team,
            team_price_unknown=team_price_unknown,
        )
        try:
            return await self.state.admit(key_ref(identity), limits, when)
        except LimitReached as reached:
            if team is not None and reached.kind == "team_budget":
                spend = TeamSpend(0, 0, reached.used, 0)
                raise _refused(budget_refusal(team, spend, when) or exhausted_refusal(team)) from None
            if team is not None and reached.kind == "team_price":
                raise _refused(price_refusal(team, model)) from None
            raise refusal_of(reached, identity, model, policy.budget_period) from None

    async def status(self, identity: ClientIdentity, *, now: float | None = None) -> dict[str, Any]:
        """What `whoami` shows a key about itself: scopes, limits, usage against them, expiry."""
        when = time.time() if now is None else now
        policy = identity.policy
        period = policy.budget_period if policy is not None else "month"
        first_day, resets_at = period_bounds(period, when)
        figures = await self.state.usage(key_ref(identity), period, when)
        usage: dict[str, Any] = {
            "requests_today": figures.requests_today,
            "tokens_today": figures.tokens_today,
            "budget_period": period,
            "period_start": iso(first_day * DAY),
            "period_resets": iso(resets_at),
            "requests_this_period": figures.requests_this_period,
            "tokens_this_period": figures.tokens_this_period,
            "cost_usd_this_period": round(figures.cost_usd_this_period, 6),
            "unknown_price_requests_this_period": figures.unknown_price_requests_this_period,
            "requests_last_minute": figures.requests_last_minute,
            "in_flight": figures.in_flight,
        }
        limits: dict[str, Any] = {}
        if policy is not None:
            limits = {
                "max-requests-per-minute": policy.max_requests_per_minute,
                "max-tokens-per-day": policy.max_tokens_per_day,
                "max-budget-usd": policy.max_budget_usd,
                "budget-period": policy.budget_period,
                "max-concurrent": policy.max_concurrent,
                "allow-unknown-price": policy.allow_unknown_price,
            }
        body: dict[str, Any] = {
            "name": identity.name,
            "key": identity.key_id,
            "disabled": bool(policy and policy.disabled),
            "expires": iso(identity.expires_at) if identity.expires_at is not None else None,
            "models": list(policy.models) if policy is not None and policy.models else ["*"],
            "limits": limits,
            "usage": usage,
        }
        if identity.team is not None:
            try:
                body["team"] = await team_status(self.teams, identity.team, when)
            except LimitReached:  # shared counters unreachable (fail-closed)
                body["team"] = {"name": identity.team.name, "error": "shared state unavailable"}
        return body
