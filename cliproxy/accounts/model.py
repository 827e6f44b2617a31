"""Users, teams, access groups, invitations and self-serve keys: the records of the accounts store.

Plain frozen data, shared by the store, the hot path (a team key's identity carries its team's
`TeamRules`) and the HTTP surfaces. Nothing here holds a secret in clear: passwords are bcrypt
hashes, keys, tokens and invitation links SHA-256 digests.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["admin", "admin-viewer", "user", "user-viewer"]
ROLES: tuple[Role, ...] = ("admin", "admin-viewer", "user", "user-viewer")
TeamState = Literal["active", "paused", "suspended"]
TEAM_STATES: tuple[TeamState, ...] = ("active", "paused", "suspended")
KeyKind = Literal["key", "cli"]  # a key the user made, or the personal token of a CLI login
# The per-key limits a team may cap for the keys its members create (config spelling).
CEILING_FIELDS = ("max-requests-per-minute", "max-tokens-per-day", "max-budget-usd", "max-concurrent")


def may_read_all(role: str) -> bool:
    return role in ("admin", "admin-viewer")


def may_change_own(role: str) -> bool:
    """Whether the role may create and revoke its own keys (the viewer roles only look)."""
    return role in ("admin", "user")


@dataclass(frozen=True, slots=True)
class User:
    email: str  # lower case; the user's id
    role: Role
    team: str = ""
    disabled: bool = False
    password_hash: str = ""  # bcrypt; '' for users who only sign in with SSO
    created: float = 0.0
    sso_subject: str = ""  # the provider's `sub`, once the user signed in with SSO

    def public(self) -> dict[str, object]:
        """What the APIs show: never the hash, only whether a password is set."""
        return {
            "email": self.email,
            "role": self.role,
            "team": self.team,
            "disabled": self.disabled,
            "has_password": bool(self.password_hash),
            "sso": bool(self.sso_subject),
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Team:
    """A team: which models its members may use, what it may spend, and the ceiling for members' keys."""

    name: str
    state: TeamState = "active"
    access_groups: tuple[str, ...] = ()  # no groups: every model
    budget_usd: float | None = None  # per `budget_period`
    budget_credits: float | None = None  # per `budget_period`, counted at `credits_per_usd`
    credits_per_usd: float = 100.0  # one credit is a cent unless the team says otherwise
    budget_period: Literal["day", "week", "month"] = "month"
    key_ceiling: dict[str, float] = field(default_factory=dict)  # CEILING_FIELDS → the most a member's key may have
    allow_unknown_price: bool = False
    created: float = 0.0

    def public(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "access-groups": list(self.access_groups),
            "budget-usd": self.budget_usd,
            "budget-credits": self.budget_credits,
            "credits-per-usd": self.credits_per_usd,
            "budget-period": self.budget_period,
            "key-ceiling": dict(self.key_ceiling),
            "allow-unknown-price": self.allow_unknown_price,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class TeamRules:
    """A team as the hot path checks it: state, the model patterns of its access groups, its budget."""

    name: str
    state: TeamState
    models: tuple[str, ...]  # glob patterns; empty: every model
    budget_usd: float | None
    budget_credits: float | None
    credits_per_usd: float
    budget_period: str
    allow_unknown_price: bool

    @property
    def budgeted(self) -> bool:
        return self.budget_usd is not None or self.budget_credits is not None

    def allows(self, model: str) -> bool:
        if not self.models:
            return True
        name = model.lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in self.models)


@dataclass(frozen=True, slots=True)
class Invitation:
    digest: str  # SHA-256 hex of the link's token
    email: str
    role: Role
    team: str
    created: float
    expires: float
    invited_by: str = ""
    used: float = 0.0  # when it was accepted; 0: not yet

    def public(self) -> dict[str, object]:
        return {
            "id": self.digest[:12],
            "email": self.email,
            "role": self.role,
            "team": self.team,
            "created": self.created,
            "expires": self.expires,
            "invited_by": self.invited_by,
            "used": self.used or None,
        }


@dataclass(frozen=True, slots=True)
class AccountKey:
    """A key a user made for themselves (or the token of a CLI login), stored as its SHA-256."""

    id: str  # 12 hex, public: how the owner names it in the API
    digest: str  # SHA-256 hex of the key
    email: str
    team: str  # the owner's team when the key was made: its spend counts there
    name: str
    kind: KeyKind = "key"
    models: tuple[str, ...] = ()
    limits: dict[str, float] = field(default_factory=dict)  # CEILING_FIELDS
    budget_period: str = "month"
    created: float = 0.0
    expires: float | None = None  # epoch seconds
    revoked: float = 0.0  # when; 0: live

    @property
    def key_id(self) -> str:
        """How usage records, logs and counters name this key: readable, and unique."""
        return f"{self.email}/{self.name}#{self.id[:6]}"

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "key_id": self.key_id,
            "team": self.team,
            "models": list(self.models),
            **dict(self.limits),
            "budget-period": self.budget_period,
            "created": self.created,
            "expires": self.expires,
            "revoked": self.revoked or None,
        }
