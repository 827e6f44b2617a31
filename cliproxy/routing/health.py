"""Credential health: the one place that decides what cools down, for how long and at which scope.

After a failed attempt, `judge` reads the credential's `request-scoped-errors` rules and the failure's
classification and says whether to stop (answer the client now), whether to cool the (credential,
model) pair down, and whether the next name of an alias pool is still worth a try. `CredentialHealth`
then applies the cooldown the way CLIProxyAPI does:

- 401: 30 min (`unauthorized`); 402, 403: 30 min (`payment_required`);
- 404, or a "model not found / unsupported" message: 12 h (`not_found`);
- 429: the upstream's retry hint, else exponential backoff 1 s, 2 s, 4 s ... capped at 30 min, which
  advances at most once per open window (`quota`); a free allowance spent for its rolling window
  (xAI's `free-usage-exhausted`, which carries no hint): 24 h (`quota`);
- anything else: `transient-error-cooldown-seconds` (0 means 60 s, -1 none) (`transient`).

`max-cooldown-seconds` caps every one of them (an upstream's hint of weeks is a bogus hint or a limit
worth probing again), `disable-cooling` (global, or the credential's own) turns all of it off, and a
success clears the pair.

Everything else (the scheduler, model listings, management, `auth status`) only reads: `remaining`,
`earliest`, `listable` and `snapshot`. Reads are synchronous and local; the changes are coroutines,
so an implementation that shares cooldowns between processes can write through to its store while
keeping a local view for the reads. `LocalCredentialHealth` is the in-process one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cliproxy.routing.catalog import Candidate, Route
from cliproxy.routing.failures import FREE_USAGE_EXHAUSTED, Failure

UNAUTHORIZED_COOLDOWN = 30 * 60.0
PAYMENT_COOLDOWN = 30 * 60.0
NOT_FOUND_COOLDOWN = 12 * 3600.0
DEFAULT_TRANSIENT_COOLDOWN = 60.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30 * 60.0
FREE_USAGE_COOLDOWN = 24 * 3600.0  # xAI's free usage resets over a rolling 24-hour window
QUOTA_REASONS = frozenset({"quota"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one failed attempt means for the rest of the request."""

    stop: bool  # answer the client with this failure now (a request fault, or a `stop` rule)
    cool: bool  # cool the (credential, model) pair down
    last_name: bool  # do not try the next name of an alias pool on this credential


_MOVE_ON = Verdict(stop=False, cool=True, last_name=False)
_FAULT = Verdict(stop=True, cool=False, last_name=True)
_NOT_IMPLEMENTED = Verdict(stop=False, cool=False, last_name=True)


def judge(rules: Sequence[Any], failure: Failure) -> Verdict:
    """The first matching `request-scoped-errors` rule decides; without one, the classification does.

    A rule matches the upstream status and, when it lists any, one of its substrings or regexes in the
    error body or message. `stop...` answers the client now, `continue...` tries the next credential;
    `...-and-cooldown` cools the credential down, the others leave it alone.
    """
    text = ""
    for rule in rules:
        if rule.status != failure.status:
            continue
        if rule.match or rule.match_regexr:
            if not text:
                text = failure.body.decode("utf-8", "replace") + "\n" + failure.message
            if not any(s in text for s in rule.match) and not any(re.search(r, text) for r in rule.match_regexr):
                continue
        return Verdict(stop=rule.action.startswith("stop"), cool=rule.action.endswith("-and-cooldown"), last_name=True)
    if failure.fault:
        return _FAULT
    if failure.status == 501:
        return _NOT_IMPLEMENTED
    return _MOVE_ON


@dataclass(slots=True)
class Cooldown:
    """One cooling (credential, model) pair."""

    until: float  # clock value when the pair becomes usable again
    reason: str  # "quota", "unauthorized", "payment_required", "not_found", "transient"
    status: int
    level: int = 0  # 429 backoff level: 1 s * 2**level


@dataclass(frozen=True, slots=True)
class CooldownView:
    """A cooldown entry as readers see it: seconds left at the time of the snapshot (0: run out)."""

    credential_id: str
    model: str
    reason: str
    status: int
    seconds: float
    level: int


@dataclass(frozen=True, slots=True)
class CoolingSettings:
    """The config values that shape a cooldown, for one credential."""

    disabled: bool  # `disable-cooling`, the credential's own value winning over the global one
    transient_seconds: int  # `transient-error-cooldown-seconds`
    max_seconds: float = 43_200.0  # `max-cooldown-seconds`: no cooldown lasts longer


class CredentialHealth(Protocol):
    """Cooldowns by (credential id, model key); ids are stable across reloads, so cooldowns survive them."""

    clock: Callable[[], float]

    def cooling(self) -> bool:
        """Whether any pair has a cooldown entry (lets the hot path skip every other check)."""
        ...

    def remaining(self, cred_id: str, model: str, now: float) -> float:
        """Seconds until the pair is usable; 0 when it is usable at `now`."""
        ...

    def earliest(self, candidates: Collection[Candidate]) -> float:
        """Seconds until the first of these candidates is usable (0 when one is usable now)."""
        ...

    def listable(self, route: Route) -> bool:
        """Hidden from model listings once no candidate is usable and one is out for a non-quota reason."""
        ...

    def snapshot(self) -> list[CooldownView]:
        """Every entry held, for management and `auth status`: `seconds` is 0 once a cooldown has run
        out (a 429 entry still remembers its backoff level until a success clears it)."""
        ...

    async def failed(self, cred_id: str, model: str, failure: Failure, settings: CoolingSettings) -> float:
        """Apply the cooldown for a failure; returns its length in seconds (0 = none)."""
        ...

    async def succeeded(self, cred_id: str, model: str) -> None:
        """A success clears the pair (and its 429 backoff level)."""
        ...

    async def clear(self, cred_ids: Collection[str] | None = None) -> list[str]:
        """Drop cooldowns by hand (`reset-quota`): these credentials, or all. Returns the models cleared."""
        ...


def cooldown_for(failure: Failure, previous: Cooldown | None, now: float, settings: CoolingSettings) -> Cooldown | None:
    """The cooldown a failure earns (None: none), given the pair's previous entry; at most
    `settings.max_seconds` long."""
    entry = _uncapped(failure, previous, now, settings)
    if entry is not None and entry.until - now > settings.max_seconds:
        entry = Cooldown(now + settings.max_seconds, entry.reason, entry.status, entry.level)
    return entry


def _uncapped(failure: Failure, previous: Cooldown | None, now: float, settings: CoolingSettings) -> Cooldown | None:
    status = failure.status
    if status == 429:
        hint = failure.retry_after
        if hint is not None and hint > 0:
            return Cooldown(now + hint, "quota", status, previous.level if previous is not None else 0)
        if failure.kind == FREE_USAGE_EXHAUSTED:
            return Cooldown(now + FREE_USAGE_COOLDOWN, "quota", status, previous.level if previous is not None else 0)
        if previous is not None and previous.reason == "quota":
            if previous.until > now:
                return previous  # one advance per open window
            level = previous.level + 1
        else:
            level = 0
        return Cooldown(now + min(BACKOFF_BASE * (2**level), BACKOFF_CAP), "quota", status, level)
    if status == 401:
        return Cooldown(now + UNAUTHORIZED_COOLDOWN, "unauthorized", status)
    if status in (402, 403):
        return Cooldown(now + PAYMENT_COOLDOWN, "payment_required", status)
    if status == 404 or failure.not_found:
        return Cooldown(now + NOT_FOUND_COOLDOWN, "not_found", status)
    if settings.transient_seconds < 0:
        return None
    return Cooldown(now + float(settings.transient_seconds or DEFAULT_TRANSIENT_COOLDOWN), "transient", status)


class LocalCredentialHealth:
    """Cooldowns in this process: deadlines against the injected clock, so they expire by themselves."""

    __slots__ = ("clock", "entries")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.entries: dict[tuple[str, str], Cooldown] = {}

    def cooling(self) -> bool:
        return bool(self.entries)

    def remaining(self, cred_id: str, model: str, now: float) -> float:
        entry = self.entries.get((cred_id, model))
        if entry is None or entry.until <= now:
            return 0.0
        return entry.until - now

    def earliest(self, candidates: Collection[Candidate]) -> float:
        now = self.clock()
        waits = [self.remaining(c.credential.id, c.model_key, now) for c in candidates]
        return min(waits) if waits else 0.0

    def listable(self, route: Route) -> bool:
        if not self.entries:
            return True
        now = self.clock()
        suspended = False
        for cand in route.candidates:
            entry = self.entries.get((cand.credential.id, cand.model_key))
            if entry is None or entry.until <= now:
                return True
            if entry.reason not in QUOTA_REASONS:
                suspended = True
        return not suspended

    def snapshot(self) -> list[CooldownView]:
        now = self.clock()
        return [
            CooldownView(cred_id, model, entry.reason, entry.status, max(0.0, entry.until - now), entry.level)
            for (cred_id, model), entry in self.entries.items()
        ]

    async def failed(self, cred_id: str, model: str, failure: Failure, settings: CoolingSettings) -> float:
        if settings.disabled:
            return 0.0
        now = self.clock()
        key = (cred_id, model)
        entry = cooldown_for(failure, self.entries.get(key), now, settings)
        if entry is None:
            return 0.0
        self.entries[key] = entry
        return entry.until - now

    async def succeeded(self, cred_id: str, model: str) -> None:
        self.entries.pop((cred_id, model), None)

    async def clear(self, cred_ids: Collection[str] | None = None) -> list[str]:
        if cred_ids is None:
            models = {model for _, model in self.entries}
            self.entries.clear()
            return sorted(models)
        keys = [key for key in self.entries if key[0] in cred_ids]
        for key in keys:
            del self.entries[key]
        return sorted({model for _, model in keys})
