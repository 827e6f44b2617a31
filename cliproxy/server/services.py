"""The composition root's services: every long-lived object of a running server, built in one place.

`build_services` constructs them in dependency order and hands each its collaborators; nothing below
`server/` looks a collaborator up anywhere. `Services.run` is the server's lifecycle (an aiohttp
`cleanup_ctx`): it starts what needs the event loop and stops it all in reverse order. Handlers in
`api/` and `management/` reach the services through `request.app[SERVICES]` (the one application key
for them), and tests read the same public objects.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from cliproxy.accounts.db import resolve_accounts_path
from cliproxy.accounts.service import Accounts
from cliproxy.credentials.registry import BUILTIN, ProviderSettings
from cliproxy.credentials.service import CredentialService
from cliproxy.credentials.store import CredentialStore
from cliproxy.log_files import FileLogging
from cliproxy.logs import Redactor, attach_redactor, collect_secrets, follow_runtime
from cliproxy.metrics.registry import Metrics
from cliproxy.policy.accounting import UsageAccountant, open_usage_db, restore_ledger
from cliproxy.policy.limits import KeyPolicy
from cliproxy.policy.state import KeyPolicyState, LocalKeyPolicyState
from cliproxy.policy.teams import LocalTeamPolicyState, TeamPolicyState
from cliproxy.pricing import Prices
from cliproxy.routing.affinity import LocalSessionAffinity, SessionAffinity
from cliproxy.routing.dispatch import Dispatcher
from cliproxy.routing.health import CredentialHealth, LocalCredentialHealth
from cliproxy.routing.scheduler import Scheduler
from cliproxy.runtime import Runtime, RuntimeHolder
from cliproxy.server.readiness import ReadinessCheck
from cliproxy.server.request_ends import RequestEnds
from cliproxy.server.request_log import RequestLogs
from cliproxy.shared.cluster import SharedState, build_shared_state
from cliproxy.upstream.clients import Sessions
from cliproxy.usage import UsageStore
from cliproxy.usage_db import UsageDB, resolve_path
from cliproxy.watch import Reloader

log = logging.getLogger(__name__)

ACCOUNTS_FOLLOW_SECONDS = 1.0


@dataclass(eq=False)
class Services:
    """The long-lived objects of one server; see the module docstring."""

    holder: RuntimeHolder  # the current runtime snapshot
    health: CredentialHealth  # cooldowns: who decides and who reads
    scheduler: Scheduler  # credential picking (cursors, weights)
    key_state: KeyPolicyState  # per-key counters: rate windows, in flight, daily tokens and spend
    prices: Prices  # litellm's price table, loaded after startup
    policy: KeyPolicy  # per-key scopes and limits
    usage: UsageStore  # per-request usage records and their subscribers
    upstreams: Sessions  # pooled upstream HTTP clients
    dispatcher: Dispatcher  # the retry loop every API handler calls
    credentials: CredentialService  # OAuth tokens (refresher, minting) and the one writer of auth-dir files
    reloader: Reloader  # hot reload (file watcher, management writes)
    redactor: Redactor  # masks every configured secret in every log line
    file_logging: FileLogging  # `logging-to-file`
    request_logs: RequestLogs  # `request-log` and the error request logs
    metrics: Metrics  # Prometheus counters and scrape-time gauges (`/metrics`)
    request_ends: RequestEnds  # each API request's summary line and request metrics
    accounts: Accounts  # users, teams, access groups, invitations, members' keys and sessions
    team_state: TeamPolicyState  # per-team spend: budgets and credits
    usage_db: UsageDB | None = None  # the SQLite usage file, open while the server runs
    affinity: SessionAffinity = field(default_factory=LocalSessionAffinity)  # session → credential bindings
    readiness: list[ReadinessCheck] = field(default_factory=list)  # what `/readyz` asks; others append
    started: bool = False  # `run` has started everything and the server accepts requests
    usage_db_path: Path | None = None  # where usage is persisted (None: `usage-db: off`, in memory)
    worker: int | None = None  # this process's index under `workers:` above 1 (None: the one process)
    shared: SharedState | None = None  # `shared-state.redis-url`: the Redis-backed state and its link

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """Startup and shutdown, in dependency order (an aiohttp `cleanup_ctx`)."""
        detach = attach_redactor(self.redactor)  # first: every later log line is masked
        holder = self.holder
        file_logging, redactor = self.file_logging, self.redactor

        def follow_file_logging(old: Runtime, new: Runtime) -> None:
            file_logging.apply(new, redactor)

        file_logging.apply(holder.current, redactor)
        holder.listeners.append(follow_file_logging)
        runtime = holder.current
        self.usage_db_path = resolve_path(runtime.config.usage_db, runtime.auth_dir, runtime.config_path.parent)
        self.usage_db = await open_usage_db(self.usage_db_path)
        accounts, teams = self.accounts, self.team_state
        shared = self.shared
        # Worker processes (and instances under shared state, which may share one volume) share the
        # accounts file: each takes in what the others write.
        sharing = self.worker is not None or shared is not None
        await open_accounts(accounts, runtime, self.usage_db_path, shared=sharing)
        following = asyncio.create_task(follow_accounts(accounts)) if sharing and accounts.enabled else None
        if shared is not None:  # before any request; it does not wait long for Redis
            await shared.start()
        if self.usage_db is not None:  # before any request: limits count what earlier runs used
            # With shared state, Redis holds the counters; the in-process fallback starts from this node's history.
            keys = shared.key_state.local if shared is not None else self.key_state
            team_ledger = shared.team_state.local if shared is not None else teams
            if isinstance(keys, LocalKeyPolicyState) and isinstance(team_ledger, LocalTeamPolicyState):
                await restore_ledger(self.usage_db, keys, team_ledger, accounts.team_of_key)
        accountant = UsageAccountant(
            self.key_state, self.prices, self.usage_db, teams=teams, team_of=accounts.team_of_key
        )
        unsubscribe = self.usage.subscribe(accountant.account)
        # After the accountant (the record carries its cost): the cluster's management totals.
        unsubscribe_cluster = self.usage.subscribe(shared.usage.observe) if shared is not None else None
        # After the accountant: a request's line and metrics carry its cost.
        unsubscribe_ends = self.usage.subscribe(self.request_ends.routed)
        await self.credentials.start()
        await self.reloader.start()
        self.started = True
        try:
            yield
        finally:
            self.started = False
            await self.reloader.stop()
            await self.credentials.stop()
            await self.request_logs.flush()
            unsubscribe()
            unsubscribe_ends()
            if unsubscribe_cluster is not None:
                unsubscribe_cluster()
            self.request_ends.flush()  # the lines still waiting
            if following is not None:
                following.cancel()
                # `wait`, not `await`: however the follower ended, the stops below (the write-behind
                # queue among them) still run.
                await asyncio.wait([following])
            await accounts.close()
            if self.usage_db is not None:
                await self.usage_db.close()
            await self.upstreams.close()
            if shared is not None:  # after the last usage add: its write-behind queue is sent on stop
                await shared.stop()
            holder.listeners.remove(follow_file_logging)
            await asyncio.to_thread(file_logging.stop, wait=True)
            detach()

    async def config_ready(self) -> str | None:
        """Readiness: a config is loaded (a bad reload keeps the last good one, which still serves)."""
        return None if self.started else "starting"

    async def usage_store_ready(self) -> str | None:
        """Readiness: the usage store is open (SQLite), or kept in memory because `usage-db: off`."""
        if not self.started:
            return "starting"
        if self.usage_db_path is None:
            return None
        if self.usage_db is None or not self.usage_db.is_open:
            return "usage-db is configured but not open (usage is kept in memory only; see the log)"
        return None


SERVICES = web.AppKey("services", Services)


async def follow_accounts(accounts: Accounts, interval: float = ACCOUNTS_FOLLOW_SECONDS) -> None:
    """Worker processes: take in the other workers' account changes (a key made, a session started
    through another worker) within `interval`."""
    while True:
        await asyncio.sleep(interval)
        try:
            await accounts.follow()
        except (OSError, sqlite3.Error, ValueError) as exc:
            log.warning("accounts-db: cannot read the other workers' changes: %s", exc)
        except Exception:  # the follower must outlive any one bad pass (a record it cannot load)
            log.exception("accounts-db: reading the other workers' changes failed")


async def open_accounts(accounts: Accounts, runtime: Runtime, usage_path: Path | None, *, shared: bool = False) -> None:
    """Open the accounts store (`accounts-db`); a file that cannot be used leaves users and teams off."""
    config = runtime.config
    path = resolve_accounts_path(config.accounts_db, usage_path, runtime.auth_dir, runtime.config_path.parent)
    try:
        await accounts.open(path, shared=shared)
    except (OSError, sqlite3.Error, ValueError) as exc:
        log.error("accounts-db: cannot use %s (%s); users and teams are off", path, exc)
        await accounts.close()


def build_services(
    holder: RuntimeHolder, *, clock: Callable[[], float] = time.monotonic, worker: int | None = None
) -> Services:
    """Every service of one server, wired; `clock` drives cooldowns (tests pass a hand-driven one),
    `worker` is this process's worker index under `workers:` above 1."""
    redactor = Redactor()
    redactor.update(collect_secrets(holder.current))
    shared_config = holder.current.config.shared_state
    metrics = Metrics(holder.current)
    shared = build_shared_state(shared_config, clock, metrics) if shared_config.redis_url else None
    health: CredentialHealth = shared.health if shared is not None else LocalCredentialHealth(clock)
    scheduler = Scheduler(health)
    team_state: TeamPolicyState = shared.team_state if shared is not None else LocalTeamPolicyState()
    # A member key's admission checks its team's spend in the key state: the same team state.
    key_state: KeyPolicyState = shared.key_state if shared is not None else LocalKeyPolicyState(team_state)
    prices = Prices()
    policy = KeyPolicy(key_state, prices, team_state)
    usage = UsageStore()
    upstreams = Sessions()
    affinity: SessionAffinity = shared.affinity if shared is not None else LocalSessionAffinity(clock)
    reloader = Reloader(holder, on_outcome=metrics.requests.config_reload)
    store = CredentialStore(BUILTIN)
    credentials = CredentialService(
        store=store,
        settings=ProviderSettings.from_env(registry=BUILTIN),
        auth_files=lambda: holder.current.auth_files,
        on_changed=reloader.reload_now,
        on_refresh=metrics.requests.oauth_refresh,
        refresh_locks=shared.locks if shared is not None else None,
        token_share=shared.tokens if shared is not None else None,
    )
    services = Services(
        holder=holder,
        health=health,
        scheduler=scheduler,
        key_state=key_state,
        prices=prices,
        policy=policy,
        usage=usage,
        upstreams=upstreams,
        dispatcher=Dispatcher(
            health=health, scheduler=scheduler, policy=policy, usage=usage, sessions=upstreams, affinity=affinity
        ),
        credentials=credentials,
        reloader=reloader,
        redactor=redactor,
        file_logging=FileLogging(worker=worker),
        request_logs=RequestLogs(holder, redactor.mask),
        affinity=affinity,
        metrics=metrics,
        request_ends=RequestEnds(metrics, holder),
        accounts=Accounts(
            lambda: holder.current.config,
            signin_limits=shared.signin_limits if shared is not None else None,
            cli=shared.cli_logins if shared is not None else None,
            oidc_pending=shared.sso_pending if shared is not None else None,
        ),
        team_state=team_state,
        worker=worker,
        shared=shared,
    )
    services.readiness.append(ReadinessCheck("config", services.config_ready))
    services.readiness.append(ReadinessCheck("usage-store", services.usage_store_ready))
    if shared is not None:
        services.readiness.append(ReadinessCheck("shared-state", shared.ready))
    holder.listeners.append(metrics.on_swap)
    credentials.bind(holder.current)
    # The redactor first, so every later listener's log lines are already masked.
    holder.listeners.insert(0, follow_runtime(redactor))
    holder.listeners.append(credentials.on_swap)
    return services
