"""The Redis-backed services of one process, built together when `shared-state.redis-url` is set.

The composition root (`server/services.py`) builds a `SharedState` instead of the in-process
counters, cooldowns, bindings and refresh locks, starts it before the server accepts requests and
stops it last. Startup waits at most `START_WAIT_SECONDS` for Redis: the proxy serves without it
(fail-closed or fail-open) and connects whenever it appears.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cliproxy.accounts.passwords import LocalSignInLimits, LoginLimiter
from cliproxy.config.model import SharedState as SharedStateConfig
from cliproxy.management.bans import GuardBans
from cliproxy.metrics.registry import Metrics
from cliproxy.routing.affinity import LocalSessionAffinity
from cliproxy.routing.health import LocalCredentialHealth
from cliproxy.shared.affinity import RedisSessionAffinity
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.health import RedisCredentialHealth
from cliproxy.shared.key_state import RedisKeyPolicyState
from cliproxy.shared.lockouts import RedisGuardBans, RedisLockouts, RedisSignInLimits
from cliproxy.shared.locks import RedisLocks
from cliproxy.shared.logins import RedisCliLogins, RedisLoginMirror, RedisPendingSignIns
from cliproxy.shared.metrics_sync import ClusterMetrics
from cliproxy.shared.team_state import RedisTeamPolicyState
from cliproxy.shared.tokens import RedisTokenShare
from cliproxy.shared.usage_totals import ClusterUsage
from cliproxy.shared.writes import WriteBehind

log = logging.getLogger(__name__)

START_WAIT_SECONDS = 2.0


@dataclass(eq=False)
class SharedState:
    link: RedisLink
    writes: WriteBehind
    key_state: RedisKeyPolicyState
    team_state: RedisTeamPolicyState
    health: RedisCredentialHealth
    affinity: RedisSessionAffinity
    locks: RedisLocks
    tokens: RedisTokenShare  # refreshed credentials for hosts that do not share the auth-dir
    usage: ClusterUsage  # the management usage totals of the whole cluster
    metrics: ClusterMetrics  # `/metrics` summed over every live process
    lockouts: RedisLockouts  # failed sign-ins and management key failures of the whole cluster
    signin_limits: RedisSignInLimits
    cli_logins: RedisCliLogins  # CLI sign-ins in progress (loopback and device codes)
    sso_pending: RedisPendingSignIns  # single sign-ons in progress
    login_mirror: RedisLoginMirror  # the management panel's upstream logins, as any process sees them
    fail_open: bool

    async def start(self) -> None:
        await self.link.start()
        await self.writes.start()
        await self.key_state.start()
        await self.usage.start()
        await self.metrics.start()
        if not await self.link.wait_up(START_WAIT_SECONDS):
            log.warning(
                "shared state: Redis at %s is not reachable (%s); serving %s until it is",
                self.link.masked_url,
                self.link.last_error,
                "limited keys with in-process counters" if self.fail_open else "only keys without limits",
            )

    async def stop(self) -> None:
        await self.metrics.stop()
        await self.key_state.stop()
        await self.writes.stop()
        await self.link.stop()

    def guard_bans(self, local: GuardBans) -> RedisGuardBans:
        """The management guard's bans for the whole cluster; `local` counts while Redis is down."""
        return RedisGuardBans(self.lockouts, local)

    async def ready(self) -> str | None:
        """Readiness: Redis is reachable; with fail-open a node without it still serves everyone."""
        if self.link.up or self.fail_open:
            return None
        return f"shared state unavailable: Redis at {self.link.masked_url} is unreachable ({self.link.last_error})"


def build_shared_state(config: SharedStateConfig, clock: Callable[[], float], metrics: Metrics) -> SharedState:
    link = RedisLink(config.redis_url, config.key_prefix)
    writes = WriteBehind(link)
    fail_open = config.on_redis_down == "fail-open"
    lockouts = RedisLockouts(link)
    teams = RedisTeamPolicyState(link, writes, fail_open=fail_open)  # the key state checks members against it
    return SharedState(
        link=link,
        writes=writes,
        key_state=RedisKeyPolicyState(link, writes, fail_open=fail_open, teams=teams),
        team_state=teams,
        health=RedisCredentialHealth(link, LocalCredentialHealth(clock)),
        affinity=RedisSessionAffinity(link, writes, LocalSessionAffinity(clock)),
        locks=RedisLocks(link),
        tokens=RedisTokenShare(link),
        usage=ClusterUsage(link, writes),
        metrics=ClusterMetrics(link, metrics),
        lockouts=lockouts,
        signin_limits=RedisSignInLimits(lockouts, LocalSignInLimits(LoginLimiter(), time.time)),
        cli_logins=RedisCliLogins(link),
        sso_pending=RedisPendingSignIns(link),
        login_mirror=RedisLoginMirror(link),
        fail_open=fail_open,
    )
