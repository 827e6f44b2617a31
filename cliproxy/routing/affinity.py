"""Session affinity: a conversation stays on the credential it started on (prompt-cache hits).

`routing.session-affinity: true` wraps whatever `routing.strategy` picks, as CLIProxyAPI does: the
first request of a session (per model route) is placed by the strategy and binds the session to the
credential that answered; later requests go to that credential while it is usable. When it is not
(cooling down, tried and failed in this request, gone from the config), the strategy picks again
and the session moves to whichever credential answers, and stays there. A binding lasts
`session-affinity-ttl` after its last use.

`SessionAffinity` is the seam, like `CredentialHealth`: reads are synchronous and local, changes
are coroutines, so a shared implementation (several processes) can write through to its store.
`LocalSessionAffinity` keeps the bindings in this process, least recently used first out once
`capacity` is reached. With affinity off nothing here runs.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from cliproxy.routing.catalog import Candidate, Route
from cliproxy.routing.health import CredentialHealth
from cliproxy.routing.scheduler import Scheduler

DEFAULT_CAPACITY = 65_536


@dataclass(frozen=True, slots=True)
class BindingView:
    """One binding as management shows it: the session only as a short digest (it may be a user id)."""

    session: str
    model: str
    credential_id: str
    seconds_left: float


class SessionAffinity(Protocol):
    """Bindings from (model route, session key) to a stable credential id."""

    def bound(self, model: str, session: str) -> str | None:
        """The credential the session is bound to on this route, or None (never bound, or expired)."""
        ...

    async def bind(self, model: str, session: str, credential_id: str, ttl: float) -> None:
        """Bind (or move) the session to `credential_id` for `ttl` seconds from now."""
        ...

    def snapshot(self) -> list[BindingView]:
        """Every live binding, for `GET /v0/management/credential-status`."""
        ...


@dataclass(slots=True)
class _Binding:
    credential_id: str
    until: float
    ttl: float


def session_digest(session: str) -> str:
    return hashlib.sha256(session.encode()).hexdigest()[:12]


class LocalSessionAffinity:
    """Bindings in this process: an LRU of at most `capacity` entries, each expiring `ttl` after last use."""

    __slots__ = ("capacity", "clock", "entries")

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = DEFAULT_CAPACITY) -> None:
        self.clock = clock
        self.capacity = capacity
        self.entries: OrderedDict[tuple[str, str], _Binding] = OrderedDict()

    def bound(self, model: str, session: str) -> str | None:
        key = (model, session)
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.until <= now:
            del self.entries[key]
            return None
        entry.until = now + entry.ttl  # a use keeps the binding alive
        self.entries.move_to_end(key)
        return entry.credential_id

    async def bind(self, model: str, session: str, credential_id: str, ttl: float) -> None:
        self.put(model, session, credential_id, ttl)

    def put(self, model: str, session: str, credential_id: str, ttl: float) -> None:
        """`bind` without the coroutine, for a shared implementation's mirror."""
        key = (model, session)
        self.entries[key] = _Binding(credential_id, self.clock() + ttl, ttl)
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def snapshot(self) -> list[BindingView]:
        now = self.clock()
        return [
            BindingView(session_digest(session), model, entry.credential_id, round(entry.until - now, 1))
            for (model, session), entry in self.entries.items()
            if entry.until > now
        ]


def sticky_pick(
    scheduler: Scheduler,
    health: CredentialHealth,
    bound: str | None,
    route: Route,
    strategy: str,
    tried: Collection[str],
) -> Candidate | None:
    """The bound credential when it can serve now, else what the strategy picks."""
    if bound is not None and bound not in tried:
        now = health.clock()
        for tier in route.tiers:
            for cand in tier:
                if cand.credential.id == bound:
                    if not health.remaining(bound, cand.model_key, now):
                        return cand
                    return scheduler.pick(route, strategy, tried)
    return scheduler.pick(route, strategy, tried)
