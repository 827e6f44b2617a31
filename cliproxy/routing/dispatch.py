"""The retry loop: model → candidates → one attempt after another until one commits or none is left.

Commit late, fail over early: nothing reaches the client until an attempt returns its `Outcome`, so
any failure before that moves on to the next credential invisibly. As in CLIProxyAPI:
- round 0 tries each usable credential once (at most `max-retry-credentials` when that is > 0); an
  alias pool tries its next upstream name on the same credential before moving on;
- another round starts only when the last failure was 403, 408, 429 or 5xx, some candidate's
  `request-retry` (its own, else the global one) allows it, and the wait for the first candidate to
  leave its cooldown is within `max-retry-interval`; a stream gets `streaming.bootstrap-retries`
  more rounds, also after 401 and 402, since nothing has reached its client yet;
- request faults go straight back, untouched by retry and cooldown.
`CredentialHealth.judge` and `failed` decide what cools down; with `routing.session-affinity` a
session's bound credential goes first while it is usable (`routing/affinity.py`); the per-key policy admits the call
once, before any upstream is asked, and its concurrency slot is released with the usage record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from cliproxy.policy import KeyPolicy, PolicyRefusal
from cliproxy.routing.affinity import SessionAffinity, sticky_pick
from cliproxy.routing.attempt import Attempt
from cliproxy.routing.call import Call, Outcome
from cliproxy.routing.catalog import Candidate, Route
from cliproxy.routing.errors import (
    ActionNotServed,
    AllCoolingDown,
    ClientFault,
    NoCredentials,
    NotAllowed,
    RoutingError,
    UnknownModel,
    UpstreamFailed,
)
from cliproxy.routing.failures import BOOTSTRAP_STATUSES, RETRY_ROUND_STATUSES, Failure
from cliproxy.routing.health import CoolingSettings, CredentialHealth, judge
from cliproxy.routing.recorder import UsageRecorder
from cliproxy.routing.scheduler import Scheduler
from cliproxy.routing.session_key import session_key
from cliproxy.runtime import Runtime
from cliproxy.upstream.clients import Sessions
from cliproxy.usage import UsageStore

TIMEOUT_STATUSES = frozenset({408, 504})


class Sender(Protocol):
    """One way of making attempts (`Attempt` over HTTP; the Responses WebSocket bridge has its own)."""

    async def send(self, cand: Candidate, upstream_model: str) -> Outcome | Failure: ...


SenderFactory = Callable[[Runtime, Call, UsageRecorder], Sender]


def _not_allowed(refusal: PolicyRefusal) -> NotAllowed:
    return NotAllowed(refusal.status, refusal.message, code=refusal.code, headers=refusal.headers)


class Dispatcher:
    """Routes calls to credentials; built once by the server and shared by every handler."""

    __slots__ = ("affinity", "health", "policy", "scheduler", "sessions", "usage")

    def __init__(
        self,
        *,
        health: CredentialHealth,
        scheduler: Scheduler,
        policy: KeyPolicy,
        usage: UsageStore,
        sessions: Sessions,
        affinity: SessionAffinity,
    ) -> None:
        self.affinity = affinity
        self.health = health
        self.scheduler = scheduler
        self.policy = policy
        self.usage = usage
        self.sessions = sessions

    async def execute(
        self, runtime: Runtime, call: Call, sender: SenderFactory | None = None, *, route_by: str = ""
    ) -> Outcome:
        """Route `call` to a credential and return the committed outcome; raises a `RoutingError`.

        `sender` makes the attempts when they are not HTTP requests (the upstream WebSocket bridge),
        `route_by` picks the credentials that serve that capability instead of `call.action`.
        The loop lives inline here (no extra coroutine frames: every await on the hot path resumes
        through each frame of the chain).
        """
        action = route_by or call.action
        if action == "generate" or action == "count_tokens":
            route, suffix = runtime.catalog.resolve(call.model)
            if call.model == "auto" and route is not None and route.model != "auto" and self.health.cooling():
                route = _first_available(runtime, self.health) or route  # model `auto`: the first one usable now
        else:
            route, suffix = runtime.catalog.resolve_for(call.model, action)
            if route is None and runtime.catalog.resolve(call.model)[0] is not None:
                raise ActionNotServed(call.model, action)
        if route is None:
            if call.client.limited:  # out of scope is 403 whether the model exists or not
                try:
                    self.policy.check_scope(call.client, call.model)
                except PolicyRefusal as refusal:
                    raise _not_allowed(refusal) from None
            raise UnknownModel(call.model)
        release = None
        if call.client.limited:  # per-key scopes, rates, allowances
            try:
                release = await self.policy.admit(
                    call.client,
                    route.model,  # the canonical id: a thinking suffix does not leave the key's scope
                    lambda: [name for c in route.candidates for name in c.offer.upstream],
                    action=call.action,
                )
            except PolicyRefusal as refusal:
                raise _not_allowed(refusal) from None
        rec = UsageRecorder(self.usage, call)
        rec.release = release
        health = self.health
        scheduler = self.scheduler
        attempt: Sender = Attempt(runtime, call, self.sessions, rec) if sender is None else sender(runtime, call, rec)
        config = runtime.config
        routing = config.routing
        strategy = routing.strategy
        session = ""  # `routing.session-affinity`: the session key, and the credential it is bound to
        bound = None
        if routing.session_affinity:
            session = session_key(call.headers, call.body, subagents=routing.session_affinity_subagents)
            if session:
                bound = self.affinity.bound(route.model, session)
        max_credentials = config.max_retry_credentials
        tried: set[str] = set()
        last: Failure | None = None
        attempted = 0
        round_no = 0
        try:
            while True:
                while True:
                    if session:
                        cand = sticky_pick(scheduler, health, bound, route, strategy, tried)
                    else:
                        cand = scheduler.pick(route, strategy, tried)
                    if cand is None:
                        break
                    cred = cand.credential
                    tried.add(cred.id)
                    if round_no == 0 and max_credentials > 0 and attempted >= max_credentials:
                        break
                    attempted += 1
                    names = cand.offer.upstream
                    for index in range(len(names)):  # alias pool: next name on the same credential
                        name = names[0] if index == 0 and len(names) == 1 else scheduler.pool_name(cand, index)
                        result = await attempt.send(cand, name + suffix if suffix else name)
                        if type(result) is Outcome:
                            rec.committed = True
                            if health.cooling():
                                await health.succeeded(cred.id, cand.model_key)
                            if session and bound != cred.id:
                                ttl = routing.session_affinity_ttl_seconds
                                await self.affinity.bind(route.model, session, cred.id, ttl)
                            if result.events is None:
                                rec.done(result.status)
                            return result
                        assert isinstance(result, Failure)
                        last = result
                        verdict = judge(cred.scoped_errors, result)
                        if verdict.last_name:
                            break
                        if index + 1 < len(names):  # on to the next name of the pool
                            rec.failed(attempt_outcome(result, cooled=0.0, stop=False))
                    assert last is not None
                    cooled = (
                        await health.failed(cred.id, cand.model_key, last, _cooling(config, cand))
                        if verdict.cool
                        else 0.0
                    )
                    rec.failed(attempt_outcome(last, cooled=cooled, stop=verdict.stop))
                    if verdict.stop:
                        raise ClientFault(last)
                if last is None:
                    wait = health.earliest(route.candidates)
                    if wait > 0:
                        raise AllCoolingDown(route.model, route.providers[0] if route.providers else "", wait)
                    raise NoCredentials(route.model, route.providers)
                next_round = round_no + 1
                bootstrap = config.streaming.bootstrap_retries if call.stream else 0
                eligible = [c for c in route.candidates if _retries(config, c) + bootstrap >= next_round]
                if not eligible or not (
                    last.status in RETRY_ROUND_STATUSES or (bootstrap > 0 and last.status in BOOTSTRAP_STATUSES)
                ):
                    break
                wait = health.earliest(eligible)
                if wait > 0 and wait > config.max_retry_interval:
                    break
                if wait > 0:
                    await asyncio.sleep(wait)
                round_no = next_round
                eligible_ids = {c.credential.id for c in eligible}
                tried = {c.credential.id for c in route.candidates if c.credential.id not in eligible_ids}
            raise UpstreamFailed(last)
        except RoutingError as exc:
            rec.done(exc.status)
            raise
        except asyncio.CancelledError:
            rec.done(499)
            raise
        except Exception:  # a bug must not keep the key's concurrency slot or lose the usage record
            rec.done(500)
            raise


def _first_available(runtime: Runtime, health: CredentialHealth) -> Route | None:
    for route in runtime.catalog.routes.values():
        if health.earliest(route.candidates) == 0:
            return route
    return None


def attempt_outcome(failure: Failure, *, cooled: float, stop: bool) -> str:
    """What a failed attempt came to, for the metrics: `timeout` (ours ran out, or the upstream said
    408/504), `error` (it ended the request), `cooldown` (it cooled the pair down), else `failover`."""
    if failure.status in TIMEOUT_STATUSES:
        return "timeout"
    if stop:
        return "error"
    return "cooldown" if cooled > 0 else "failover"


def _cooling(config: Any, cand: Candidate) -> CoolingSettings:
    """The cooldown settings for one credential: its own `disable-cooling` wins over the global one."""
    own = cand.credential.disable_cooling
    return CoolingSettings(
        disabled=config.disable_cooling if own is None else own,
        transient_seconds=config.transient_error_cooldown_seconds,
        max_seconds=config.max_cooldown_seconds,
    )


def _retries(config: Any, cand: Candidate) -> int:
    """Effective `request-retry`: the credential's own value wins over the global one."""
    own = cand.credential.request_retry
    return int(config.request_retry) if own is None else own
