"""Model id → candidate credentials, precomputed once per snapshot so a request costs one dict lookup.

Registration, as in CLIProxyAPI: every model a credential offers is registered under its
client-visible id; a prefixed credential registers `prefix/id`, and also the bare id unless
`force-model-prefix` is on (or the prefix equals the id). A thinking suffix `name(value)` is
looked up on the base name and kept for the upstream call. Candidates are grouped into priority
tiers (highest first), each sorted by credential id, which is the order the strategies work on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cliproxy.config.model import Config
from cliproxy.routing.credentials import Credential, ModelOffer, from_auth_files, synthesize
from cliproxy.upstream.base import GENERATE_ACTIONS

CLOAK_PREFIX = "claude-fable-5-dd-"
DEFAULT_CONTEXT_TOKENS = 200_000  # Anthropic listing defaults
DEFAULT_OUTPUT_TOKENS = 64_000


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """A credential able to serve a route, with the offer that matched (its upstream names)."""

    credential: Credential
    offer: ModelOffer

    @property
    def model_key(self) -> str:
        """Cooldowns are per (credential, model): the visible id without prefix or suffix."""
        return self.offer.id


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    model: str  # the registered id a client sends (with prefix when prefixed)
    tiers: tuple[tuple[Candidate, ...], ...]  # highest priority first, each sorted by credential id
    providers: tuple[str, ...]  # by number of candidates, descending (for messages)
    owned_by: str
    display_name: str
    created: int
    context_length: int | None
    max_output_tokens: int | None

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(c for tier in self.tiers for c in tier)


@dataclass(frozen=True)
class Catalog:
    """Immutable per-snapshot index of credentials and the models they serve.

    `routes` serve the generate actions (every dialect's generate and count-tokens routes);
    `action_routes` the passthrough routes (`compact`, `search`, images, `interactions`) and the
    upstream WebSocket, each over the credentials that serve it. `runtime` are the credentials
    that live as long as a connection (the AI Studio relay), already among `credentials`.
    """

    credentials: tuple[Credential, ...] = ()
    routes: dict[str, Route] = field(default_factory=dict)
    by_id: dict[str, Credential] = field(default_factory=dict)
    action_routes: dict[str, dict[str, Route]] = field(default_factory=dict)
    runtime: tuple[Credential, ...] = ()
    force_prefix: bool = False

    @property
    def models(self) -> dict[str, tuple[Credential, ...]]:
        """Model id → credentials serving it (a convenience view for management and listings)."""
        return {mid: tuple(c.credential for c in route.candidates) for mid, route in self.routes.items()}

    def resolve(self, model: str) -> tuple[Route | None, str]:
        """The route for a client model id and its thinking suffix (`"(high)"` or `""`)."""
        route = self.routes.get(model)
        if route is not None:
            return route, ""
        if model.endswith(")"):
            cut = model.find("(")
            if cut > 0:
                return self.routes.get(model[:cut]), model[cut:]
        if model == "auto" and self.routes:
            return next(iter(self.routes.values())), ""
        return None, ""

    def resolve_for(self, model: str, action: str) -> tuple[Route | None, str]:
        """`resolve` among the credentials that serve `action`."""
        if action in GENERATE_ACTIONS:
            return self.resolve(model)
        routes = self.action_routes.get(action)
        if not routes:
            return None, ""
        route = routes.get(model)
        if route is not None:
            return route, ""
        if model.endswith(")"):
            cut = model.find("(")
            if cut > 0:
                return routes.get(model[:cut]), model[cut:]
        return None, ""

    def serves(self, action: str) -> bool:
        """Whether any credential serves `action` (a route can say 501 at once when none does)."""
        return action in GENERATE_ACTIONS or bool(self.action_routes.get(action))

    def with_runtime(self, runtime: Sequence[Credential]) -> Catalog:
        """This catalog with `runtime` as its runtime-only credentials (replacing the previous ones)."""
        if not runtime and not self.runtime:
            return self
        old = {id(c) for c in self.runtime}
        base = tuple(c for c in self.credentials if id(c) not in old)
        return catalog_of((*base, *runtime), force_prefix=self.force_prefix, runtime=tuple(runtime))


def cloak(model_id: str) -> str:
    """A non-claude id as an Anthropic-format listing shows it, so Claude Code accepts it (CLIProxyAPI's
    `claude-fable-5-dd-` cloak)."""
    return model_id if model_id.startswith("claude-") else CLOAK_PREFIX + model_id[::-1]


def uncloak(model_id: str) -> str:
    return model_id[len(CLOAK_PREFIX) :][::-1] if model_id.startswith(CLOAK_PREFIX) else model_id


def build_routes(
    credentials: Sequence[Credential], *, force_prefix: bool, action: str = "generate"
) -> dict[str, Route]:
    registered: dict[str, list[Candidate]] = {}
    for cred in credentials:
        if cred.disabled or action not in cred.actions:
            continue
        for offer in cred.models:
            keys = []
            if cred.prefix:
                keys.append(f"{cred.prefix}/{offer.id}")
                if not force_prefix or cred.prefix == offer.id:
                    keys.append(offer.id)
            else:
                keys.append(offer.id)
            for key in keys:
                bucket = registered.setdefault(key, [])
                if not any(c.credential is cred for c in bucket):
                    bucket.append(Candidate(cred, offer))
    routes: dict[str, Route] = {}
    for key, cands in registered.items():
        priorities = sorted({c.credential.priority for c in cands}, reverse=True)
        tiers = tuple(
            tuple(sorted((c for c in cands if c.credential.priority == p), key=lambda c: c.credential.id))
            for p in priorities
        )
        counts: dict[str, int] = {}
        for c in cands:
            counts[c.credential.provider] = counts.get(c.credential.provider, 0) + 1
        first = cands[0]
        routes[key] = Route(
            model=key,
            tiers=tiers,
            providers=tuple(sorted(counts, key=lambda p: -counts[p])),
            owned_by=first.credential.owned_by,
            display_name=first.offer.display_name or first.offer.id,
            created=first.offer.created,
            context_length=first.offer.context_length,
            max_output_tokens=first.offer.max_output_tokens,
        )
    return routes


def build_catalog(config: Config, auth_files: Sequence[Any] = ()) -> Catalog:
    credentials = tuple(synthesize(config) + from_auth_files(config, auth_files))
    return catalog_of(credentials, force_prefix=config.force_model_prefix)


def catalog_of(
    credentials: tuple[Credential, ...], *, force_prefix: bool, runtime: tuple[Credential, ...] = ()
) -> Catalog:
    others = {a for c in credentials for a in c.actions} - GENERATE_ACTIONS
    return Catalog(
        credentials=credentials,
        routes=build_routes(credentials, force_prefix=force_prefix),
        by_id={c.id: c for c in credentials},
        action_routes={a: build_routes(credentials, force_prefix=force_prefix, action=a) for a in sorted(others)},
        runtime=runtime,
        force_prefix=force_prefix,
    )
