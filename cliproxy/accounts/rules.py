"""What makes a valid user, team or self-serve key, and how a member's key becomes a client identity.

The HTTP surfaces pass the fields they received; these functions answer with the record to store
or an `AccountsError` that names the field and says what would be accepted.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from cliproxy.accounts.model import CEILING_FIELDS, ROLES, TEAM_STATES, AccountKey, Role, Team, TeamRules, User
from cliproxy.clientkeys import ClientIdentity
from cliproxy.config.model import ClientKey

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
TEAM_FIELDS = frozenset(
    {
        "state",
        "access-groups",
        "budget-usd",
        "budget-credits",
        "credits-per-usd",
        "budget-period",
        "key-ceiling",
        "allow-unknown-price",
    }
)
PERIODS = ("day", "week", "month")


class AccountsError(Exception):
    """A request the accounts store refuses: the HTTP status and a message the user can act on."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def normal_email(value: Any) -> str:
    if not isinstance(value, str) or not EMAIL.match(value.strip()):
        raise AccountsError(400, "email: not an email address")
    return value.strip().lower()


def valid_role(value: Any) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise AccountsError(400, f"role: must be one of {', '.join(ROLES)}")


def valid_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value.strip()):
        raise AccountsError(400, f"{what}: 1 to 64 letters, digits, spaces, '.', '_' or '-'")
    return value.strip()


def _number(value: Any, what: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise AccountsError(400, f"{what}: must be a number of at least {minimum:g}")
    return float(value)


def _optional_number(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def team_with(base: Team, fields: Mapping[str, Any], groups: Mapping[str, tuple[str, ...]]) -> Team:
    """`base` with `fields` (YAML spelling) applied; unknown fields and access groups are refused."""
    unknown = sorted(set(fields) - TEAM_FIELDS)
    if unknown:
        raise AccountsError(400, f"unknown team fields: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    if "state" in fields:
        if fields["state"] not in TEAM_STATES:
            raise AccountsError(400, f"state: must be one of {', '.join(TEAM_STATES)}")
        values["state"] = fields["state"]
    if "access-groups" in fields:
        names = fields["access-groups"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise AccountsError(400, "access-groups: a list of access group names")
        missing = [n for n in names if n not in groups]
        if missing:
            raise AccountsError(400, f"access-groups: no access group named {', '.join(map(repr, missing))}")
        values["access_groups"] = tuple(dict.fromkeys(names))
    if "budget-usd" in fields:
        values["budget_usd"] = _optional_number(fields["budget-usd"], "budget-usd")
    if "budget-credits" in fields:
        values["budget_credits"] = _optional_number(fields["budget-credits"], "budget-credits")
    if "credits-per-usd" in fields:
        values["credits_per_usd"] = _number(fields["credits-per-usd"], "credits-per-usd", minimum=0.000001)
    if "budget-period" in fields:
        if fields["budget-period"] not in PERIODS:
            raise AccountsError(400, "budget-period: day, week or month")
        values["budget_period"] = fields["budget-period"]
    if "key-ceiling" in fields:
        values["key_ceiling"] = limits_of(fields["key-ceiling"] or {}, "key-ceiling")
    if "allow-unknown-price" in fields:
        values["allow_unknown_price"] = bool(fields["allow-unknown-price"])
    return replace(base, **values)


def limits_of(data: Any, what: str) -> dict[str, float]:
    if not isinstance(data, Mapping):
        raise AccountsError(400, f"{what}: an object of {', '.join(CEILING_FIELDS)}")
    unknown = sorted(set(data) - set(CEILING_FIELDS))
    if unknown:
        raise AccountsError(400, f"{what}: unknown limits {', '.join(unknown)} (known: {', '.join(CEILING_FIELDS)})")
    out: dict[str, float] = {}
    for name in CEILING_FIELDS:
        value = data.get(name)
        if value is not None:
            minimum = 0.0 if name in ("max-budget-usd", "max-tokens-per-day") else 1.0
            out[name] = _number(value, f"{what}.{name}", minimum=minimum)
    return out


def team_models(team: Team | None, groups: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The model patterns of a team's access groups (empty: every model)."""
    if team is None:
        return ()
    return tuple(dict.fromkeys(p for name in team.access_groups for p in groups.get(name, ())))


def rules_of(team: Team, groups: Mapping[str, tuple[str, ...]]) -> TeamRules:
    models = team_models(team, groups)
    if team.access_groups and not models:
        models = ("\0",)  # groups that name no model allow none, not every one
    return TeamRules(
        name=team.name,
        state=team.state,
        models=models,
        budget_usd=team.budget_usd,
        budget_credits=team.budget_credits,
        credits_per_usd=team.credits_per_usd,
        budget_period=team.budget_period,
        allow_unknown_price=team.allow_unknown_price,
    )


def key_models(requested: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The model patterns a member asked for their key, each inside the team's patterns."""
    if requested is None:
        return ()
    if not isinstance(requested, list) or not all(isinstance(m, str) for m in requested):
        raise AccountsError(400, "models: a list of model ids or patterns")
    models = tuple(dict.fromkeys(m.strip() for m in requested if m.strip()))
    if allowed:
        outside = [m for m in models if not any(fnmatch.fnmatchcase(m.lower(), p.lower()) for p in allowed)]
        if outside:
            raise AccountsError(
                403, f"models: {', '.join(map(repr, outside))} not in your team's access groups ({', '.join(allowed)})"
            )
    return models


def key_limits(requested: Any, team: Team | None) -> dict[str, float]:
    """A member's key limits: what they asked for, never above the team's per-key ceiling (and the
    ceiling itself where they asked for nothing, or the key would have no limit at all)."""
    limits = limits_of(requested or {}, "limits")
    ceiling = team.key_ceiling if team is not None else {}
    for name, most in ceiling.items():
        value = limits.get(name)
        if value is None:
            limits[name] = most
        elif value > most:
            raise AccountsError(403, f"{name}: {value:g} is above your team's per-key ceiling of {most:g}")
    return limits


def identity_of(key: AccountKey, user: User, team: TeamRules | None) -> ClientIdentity:
    """The client identity a member's key authenticates as; the front door and the policy read it."""
    limits = key.limits
    rpm, tokens, budget, concurrent = (limits.get(name) for name in CEILING_FIELDS)
    period: Literal["day", "week", "month"] = "month"
    if key.budget_period == "day":
        period = "day"
    elif key.budget_period == "week":
        period = "week"
    policy = ClientKey(
        name=key.name,
        key_sha256=key.digest,
        models=key.models,
        disabled=user.disabled,
        max_requests_per_minute=int(rpm) if rpm is not None else None,
        max_tokens_per_day=int(tokens) if tokens is not None else None,
        max_budget_usd=budget,
        budget_period=period,
        max_concurrent=int(concurrent) if concurrent is not None else None,
    )
    return ClientIdentity(
        key_id=key.key_id,
        name=key.name,
        digest=bytes.fromhex(key.digest),
        policy=policy,
        expires_at=key.expires,
        limited=True,  # the role and the team are checked on every request
        team=team,
        owner=user.email,
        login_token=key.kind == "cli",
        read_only=user.role in ("admin-viewer", "user-viewer"),
    )
