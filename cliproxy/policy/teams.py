"""Team rules on a member's key: state, access groups, and the team's shared budget or credits.

A key a user made carries its team's `TeamRules` in its identity, so the checks that need no
counter (a paused or suspended team, a model outside the team's access groups, a viewer role)
cost a few attribute reads. The team's spend lives behind `TeamPolicyState`, the same kind of
seam as the per-key counters: `spent` reads a team's figures for a period, `add_usage` counts a
finished request. `LocalTeamPolicyState` keeps them in this process, by team name and UTC day,
filled from the usage database at startup. Credits are the team's budget in its own unit:
`credits-per-usd` of them buy one dollar of upstream price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cliproxy.accounts.model import TeamRules
from cliproxy.policy.ledger import DAY, UsageLedger, iso, period_bounds


@dataclass(frozen=True, slots=True)
class TeamRefusal:
    """Why a team's rules refuse a request (status, message, machine-readable code)."""

    status: int
    message: str
    code: str


@dataclass(frozen=True, slots=True)
class TeamSpend:
    requests: int
    tokens: int
    cost_usd: float
    unknown_price_requests: int


class TeamPolicyState(Protocol):
    async def spent(self, team: str, period: str, now: float) -> TeamSpend:
        """The team's figures since the start of the current `period`."""
        ...

    def add_usage(self, team: str, when: float, *, tokens: int, cost_usd: float | None) -> None: ...


class LocalTeamPolicyState:
    """Team spend in this process, by team name; it survives reloads (and restarts, through the usage db)."""

    def __init__(self) -> None:
        self.ledger = UsageLedger()

    async def spent(self, team: str, period: str, now: float) -> TeamSpend:
        first_day, _ = period_bounds(period, now)
        total = self.ledger.since(team, first_day)
        return TeamSpend(total.requests, total.tokens, total.cost_usd, total.unknown_cost)

    def add_usage(self, team: str, when: float, *, tokens: int, cost_usd: float | None) -> None:
        self.ledger.add_request(team, when, tokens=tokens, cost_usd=cost_usd)


def state_refusal(rules: TeamRules) -> TeamRefusal | None:
    if rules.state == "suspended":
        return TeamRefusal(
            403, f"team suspended: team {rules.name!r} is suspended; ask an administrator", "team_suspended"
        )
    if rules.state == "paused":
        return TeamRefusal(
            403,
            f"team paused: team {rules.name!r} is paused by an administrator; requests work again once it is active",
            "team_paused",
        )
    return None


def scope_refusal(rules: TeamRules, model: str) -> TeamRefusal | None:
    if rules.allows(model):
        return None
    return TeamRefusal(
        403,
        f"model {model!r} is not in the access groups of team {rules.name!r} (allowed: {', '.join(rules.models)})",
        "model_not_allowed",
    )


def _money(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


def budget_refusal(rules: TeamRules, spend: TeamSpend, now: float) -> TeamRefusal | None:
    """The refusal once the team's credits or USD budget for this period are used up."""
    _, resets = period_bounds(rules.budget_period, now)
    period = rules.budget_period
    if rules.budget_credits is not None:
        used = spend.cost_usd * rules.credits_per_usd
        if used >= rules.budget_credits:
            return TeamRefusal(
                403,
                f"insufficient credits: team {rules.name!r} has used {used:,.2f} of its {rules.budget_credits:,.2f} "
                f"credits this {period}; they renew at {iso(resets)}",
                "insufficient_credits",
            )
    if rules.budget_usd is not None and spend.cost_usd >= rules.budget_usd:
        return TeamRefusal(
            403,
            f"team budget exhausted: team {rules.name!r} has spent {_money(spend.cost_usd)} of "
            f"{_money(rules.budget_usd)} this {period}; it resets at {iso(resets)}",
            "team_budget_exhausted",
        )
    return None


def exhausted_refusal(rules: TeamRules) -> TeamRefusal:
    """The refusal when a shared store said the budget is spent but the figure it sent does not show it
    (a rounding between the store and this process): still a refusal, without figures."""
    return TeamRefusal(
        403,
        f"team budget exhausted: team {rules.name!r} has spent its budget this {rules.budget_period}",
        "team_budget_exhausted",
    )


def price_refusal(rules: TeamRules, model: str) -> TeamRefusal:
    return TeamRefusal(
        403,
        f"the price of model {model!r} is unknown, so team {rules.name!r} (which has a budget) may not use it; "
        "set allow-unknown-price on the team to allow it",
        "model_price_unknown",
    )


async def team_status(state: TeamPolicyState, rules: TeamRules, now: float) -> dict[str, object]:
    """A team's budget and what is left of it this period (whoami, the panel, `cliproxy whoami`)."""
    spend = await state.spent(rules.name, rules.budget_period, now)
    first_day, resets = period_bounds(rules.budget_period, now)
    status: dict[str, object] = {
        "name": rules.name,
        "state": rules.state,
        "models": list(rules.models) or ["*"],
        "budget_period": rules.budget_period,
        "period_start": iso(first_day * DAY),
        "period_resets": iso(resets),
        "requests_this_period": spend.requests,
        "tokens_this_period": spend.tokens,
        "spent_usd_this_period": round(spend.cost_usd, 6),
        "budget_usd": rules.budget_usd,
        "remaining_usd": None if rules.budget_usd is None else round(max(0.0, rules.budget_usd - spend.cost_usd), 6),
        "budget_credits": rules.budget_credits,
        "credits_per_usd": rules.credits_per_usd,
        "credits_used_this_period": round(spend.cost_usd * rules.credits_per_usd, 4),
    }
    if rules.budget_credits is not None:
        used = spend.cost_usd * rules.credits_per_usd
        status["remaining_credits"] = round(max(0.0, rules.budget_credits - used), 4)
    else:
        status["remaining_credits"] = None
    return status
