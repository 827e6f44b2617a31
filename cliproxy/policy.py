"""Per-key policy: model scopes, per-minute rates, concurrency, daily tokens and budgets.

The front door (`server/access.py`) already refused unknown, disabled and expired keys (401).
What is left needs the model and live counters, so dispatch asks `admit` once per request, after
the model resolved and before any upstream call. Each refusal is a `PolicyRefusal` a client can
act on: 403 naming the model it may not use, 403 when its daily tokens or its budget are spent
(the allowance does not come back by retrying), 429 with `Retry-After` for the per-minute rate
and the concurrency cap (it does).

Plain-string keys and key objects without limits cost nothing here: `identity.limited` is False.
Live counters (rate windows, in-flight counts) are keyed by key digest on one `PolicyState` per
app, so they survive reloads; allowances count from the usage ledger, which `usage_db` fills from
the SQLite file at startup and every usage record keeps current.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import logging
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cliproxy.clientkeys import ClientIdentity
from cliproxy.config.model import ClientKey
from cliproxy.pricing import PriceTable

log = logging.getLogger(__name__)

DAY = 86_400
RATE_WINDOW_SECONDS = 60.0
LEDGER_DAYS = 32  # enough for the longest budget period (a month)

Release = Callable[[], None]


class PolicyRefusal(Exception):
    """A request the key's policy does not allow; dispatch shapes it in the client's dialect."""

    def __init__(self, status: int, message: str, *, code: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


# -- calendar ----------------------------------------------------------------------------------------


def day_number(ts: float) -> int:
    """Days since the epoch (UTC): the ledger's bucket for a timestamp."""
    return int(ts // DAY)


def period_bounds(period: str, now: float) -> tuple[int, float]:
    """(first day number of the current `period`, epoch when the next one starts), in UTC."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    if period == "day":
        start, end = today, today + dt.timedelta(days=1)
    elif period == "week":  # ISO weeks start on Monday
        start = today - dt.timedelta(days=today.weekday())
        end = start + dt.timedelta(days=7)
    else:
        start = today.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    epoch = dt.date(1970, 1, 1)
    resets = dt.datetime.combine(end, dt.time(), dt.UTC).timestamp()
    return (start - epoch).days, resets


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


# -- the ledger --------------------------------------------------------------------------------------


@dataclass(slots=True)
class DayUsage:
    requests: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost: int = 0  # requests that used tokens on a model without a known price


@dataclass
class UsageLedger:
    """Per key id (the name, or the redacted key): usage per UTC day for the last `LEDGER_DAYS`."""

    days: dict[str, dict[int, DayUsage]] = field(default_factory=dict)

    def add(self, key_id: str, day: int, *, requests: int, tokens: int, cost_usd: float, unknown: int) -> None:
        bucket = self.days.setdefault(key_id, {})
        usage = bucket.get(day)
        if usage is None:
            usage = bucket[day] = DayUsage()
            self._prune(bucket, day)
        usage.requests += requests
        usage.tokens += tokens
        usage.cost_usd += cost_usd
        usage.unknown_cost += unknown

    def add_record(self, record: Any) -> None:
        """Count one usage record (its `cost_usd` already set, None meaning unknown)."""
        cost = record.cost_usd
        self.add(
            record.client_key,
            day_number(record.timestamp),
            requests=1,
            tokens=record_tokens(record),
            cost_usd=cost or 0.0,
            unknown=1 if cost is None else 0,
        )

    @staticmethod
    def _prune(bucket: dict[int, DayUsage], newest: int) -> None:
        for old in [d for d in bucket if d <= newest - LEDGER_DAYS]:
            del bucket[old]

    def tokens_on(self, key_id: str, day: int) -> int:
        usage = self.days.get(key_id, {}).get(day)
        return usage.tokens if usage is not None else 0

    def since(self, key_id: str, first_day: int) -> DayUsage:
        """Totals from `first_day` (inclusive) to now."""
        total = DayUsage()
        for day, usage in self.days.get(key_id, {}).items():
            if day >= first_day:
                total.requests += usage.requests
                total.tokens += usage.tokens
                total.cost_usd += usage.cost_usd
                total.unknown_cost += usage.unknown_cost
        return total


# -- live state --------------------------------------------------------------------------------------


@dataclass(slots=True)
class KeyLive:
    """Per key digest: admitted request times of the last minute, and requests in flight."""

    window: deque[float] = field(default_factory=deque)
    in_flight: int = 0

    def recent(self, now: float) -> int:
        window = self.window
        horizon = now - RATE_WINDOW_SECONDS
        while window and window[0] <= horizon:
            window.popleft()
        return len(window)


class PolicyState:
    """Everything per-key enforcement remembers; one per app (`appkeys.POLICY`), across reloads."""

    def __init__(self) -> None:
        self.live: dict[bytes, KeyLive] = {}
        self.ledger = UsageLedger()
        self.prices: PriceTable | None = None
        self._prices_loading: asyncio.Future[PriceTable] | None = None

    def start_loading_prices(self) -> asyncio.Future[PriceTable]:
        """Read litellm's price data in a worker thread (startup; never on the request path)."""
        if self._prices_loading is None:
            self._prices_loading = asyncio.ensure_future(asyncio.to_thread(PriceTable.load))
            self._prices_loading.add_done_callback(self._prices_loaded)
        return self._prices_loading

    def _prices_loaded(self, future: asyncio.Future[PriceTable]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.prices = future.result()
            log.debug("price table ready: %d models", len(self.prices))

    async def price_table(self) -> PriceTable:
        """The price table; a request that needs it before the startup load finished waits for it."""
        if self.prices is not None:
            return self.prices
        return await asyncio.shield(self.start_loading_prices())

    def live_for(self, digest: bytes) -> KeyLive:
        live = self.live.get(digest)
        if live is None:
            live = self.live[digest] = KeyLive()
        return live


# -- checks ------------------------------------------------------------------------------------------


def model_allowed(policy: ClientKey | None, model: str) -> bool:
    """Whether a key may use `model` (glob patterns, case-insensitive; no patterns = every model)."""
    if policy is None or not policy.models:
        return True
    name = model.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in policy.models)


def check_scope(identity: ClientIdentity, model: str) -> None:
    """Raise the 403 that names `model` when it is outside the key's `models` patterns.

    Dispatch also calls this for a model the catalog does not know, so a scoped key cannot tell
    models that exist from models that do not outside its scope.
    """
    policy = identity.policy
    if policy is not None and not model_allowed(policy, model):
        raise PolicyRefusal(
            403,
            f"model {model!r} is not allowed for API key {identity.name!r} (allowed: {', '.join(policy.models)})",
            code="model_not_allowed",
        )


def priced(prices: PriceTable, model: str, upstream_names: Iterable[str]) -> bool:
    """A route has a known price when its visible id has one, or every upstream name it may use has one."""
    if prices.price(model) is not None:
        return True
    names = list(upstream_names)
    return bool(names) and all(prices.price(n) is not None for n in names)


def _money(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


async def admit(
    state: PolicyState,
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
    name = identity.name
    check_scope(identity, model)
    when = time.time() if now is None else now
    ledger = state.ledger
    if action == "generate":
        if policy.max_tokens_per_day is not None:
            used = ledger.tokens_on(identity.key_id, day_number(when))
            if used >= policy.max_tokens_per_day:
                resets = iso((day_number(when) + 1) * DAY)
                raise PolicyRefusal(
                    403,
                    f"daily token allowance of API key {name!r} is used up ({used:,} of "
                    f"{policy.max_tokens_per_day:,} tokens today); it resets at {resets}",
                    code="token_allowance_exhausted",
                )
        if policy.max_budget_usd is not None:
            first_day, resets_at = period_bounds(policy.budget_period, when)
            spent = ledger.since(identity.key_id, first_day).cost_usd
            if spent >= policy.max_budget_usd:
                raise PolicyRefusal(
                    403,
                    f"budget of API key {name!r} is used up ({_money(spent)} of {_money(policy.max_budget_usd)} "
                    f"this {policy.budget_period}); it resets at {iso(resets_at)}",
                    code="budget_exhausted",
                )
            if not policy.allow_unknown_price:
                prices = await state.price_table()
                if not priced(prices, model, upstream_names()):
                    raise PolicyRefusal(
                        403,
                        f"the price of model {model!r} is unknown, so API key {name!r} (which has a budget) may "
                        "not use it; set allow-unknown-price: true on the key to allow it",
                        code="model_price_unknown",
                    )
    live = state.live_for(identity.digest)
    rpm = policy.max_requests_per_minute
    if rpm is not None and live.recent(when) >= rpm:
        wait = max(1, math.ceil(live.window[0] + RATE_WINDOW_SECONDS - when))
        raise PolicyRefusal(
            429,
            f"API key {name!r} is limited to {rpm} requests per minute; retry in {wait} s",
            code="rate_limit_exceeded",
            retry_after=wait,
        )
    cap = policy.max_concurrent
    if cap is not None and live.in_flight >= cap:
        raise PolicyRefusal(
            429,
            f"API key {name!r} already has {live.in_flight} requests in flight (limit {cap}); retry when one finishes",
            code="concurrency_limit_exceeded",
            retry_after=1,
        )
    if rpm is not None:
        live.window.append(when)
    if cap is None:
        return None
    live.in_flight += 1
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            live.in_flight -= 1

    return release


# -- usage -------------------------------------------------------------------------------------------


def record_cost(prices: PriceTable, record: Any) -> float | None:
    """USD of one usage record: by the upstream model's price, else the client-visible id's."""
    inp, out, cached, created = (
        record.input_tokens,
        record.output_tokens,
        record.cached_tokens,
        record.cache_creation_tokens,
    )
    includes = record.upstream_dialect != "claude"
    cost = prices.cost(
        record.model,
        input_tokens=inp,
        output_tokens=out,
        cached_tokens=cached,
        cache_creation_tokens=created,
        input_includes_cached=includes,
    )
    if cost is None and record.alias and record.alias != record.model:
        cost = prices.cost(
            record.alias,
            input_tokens=inp,
            output_tokens=out,
            cached_tokens=cached,
            cache_creation_tokens=created,
            input_includes_cached=includes,
        )
    return cost


def record_tokens(record: Any) -> int:
    total: int = record.total_tokens or (
        record.input_tokens + record.output_tokens + record.cached_tokens + record.cache_creation_tokens
    )
    return total


def key_status(state: PolicyState, identity: ClientIdentity, *, now: float | None = None) -> dict[str, Any]:
    """What `whoami` shows a key about itself: scopes, limits, usage against them, expiry."""
    when = time.time() if now is None else now
    policy = identity.policy
    today = day_number(when)
    ledger = state.ledger
    live = state.live.get(identity.digest)
    period = policy.budget_period if policy is not None else "month"
    first_day, resets_at = period_bounds(period, when)
    in_period = ledger.since(identity.key_id, first_day)
    usage: dict[str, Any] = {
        "requests_today": ledger.since(identity.key_id, today).requests,
        "tokens_today": ledger.tokens_on(identity.key_id, today),
        "budget_period": period,
        "period_start": iso(first_day * DAY),
        "period_resets": iso(resets_at),
        "requests_this_period": in_period.requests,
        "tokens_this_period": in_period.tokens,
        "cost_usd_this_period": round(in_period.cost_usd, 6),
        "unknown_price_requests_this_period": in_period.unknown_cost,
        "requests_last_minute": live.recent(when) if live is not None else 0,
        "in_flight": live.in_flight if live is not None else 0,
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
    return {
        "name": identity.name,
        "key": identity.key_id,
        "disabled": bool(policy and policy.disabled),
        "expires": iso(identity.expires_at) if identity.expires_at is not None else None,
        "models": list(policy.models) if policy is not None and policy.models else ["*"],
        "limits": limits,
        "usage": usage,
    }


# -- the feature: state, prices, persisted usage, whoami ---------------------------------------------


def install(app: Any) -> None:
    """`FEATURES` hook: policy state, the price table, the usage ledger and its SQLite file, whoami.

    Startup order matters: the ledger is filled from the file before the server accepts requests,
    and the subscriber that prices records runs before the one that persists them (it is the same
    callback), so every stored row carries its cost.
    """
    from aiohttp import web

    from cliproxy.api import whoami
    from cliproxy.appkeys import POLICY, RUNTIME, USAGE_DB
    from cliproxy.usage_db import UsageDB, resolve_path

    state = PolicyState()
    app[POLICY] = state
    app.router.add_get(whoami.PATH, whoami.get_whoami)

    async def lifecycle(app: web.Application) -> Any:
        runtime = app[RUNTIME].current
        pending: list[Any] = []
        db: UsageDB | None = None
        path = resolve_path(runtime.config.usage_db, runtime.auth_dir, runtime.config_path.parent)
        if path is not None:
            candidate = UsageDB(path)
            try:
                await candidate.open()
                totals = await candidate.daily_totals(time.time() - LEDGER_DAYS * DAY)
            except (OSError, sqlite3.Error) as exc:
                log.error("usage-db: cannot use %s (%s); usage is kept in memory only", path, exc)
                await candidate.close()
            else:
                db = candidate
                app[USAGE_DB] = db
                for key_id, day, requests, tokens, cost, unknown in totals:
                    state.ledger.add(key_id, day, requests=requests, tokens=tokens, cost_usd=cost, unknown=unknown)

        def account(record: Any) -> None:
            prices = state.prices
            if prices is None:  # the price table is still loading: count these when it is ready
                pending.append(record)
                return
            if record.cost_usd is None:
                record.cost_usd = record_cost(prices, record)
            state.ledger.add_record(record)
            if db is not None:
                db.add(record)

        def drain(_: Any) -> None:
            if state.prices is None:
                state.prices = PriceTable({})
            batch = pending[:]
            pending.clear()
            for record in batch:
                account(record)

        state.start_loading_prices().add_done_callback(drain)
        unsubscribe = subscribe_usage(app, account)
        yield
        unsubscribe()
        if db is not None:
            await db.close()

    app.cleanup_ctx.append(lifecycle)


def subscribe_usage(app: Any, callback: Callable[[Any], None]) -> Callable[[], None]:
    """Subscribe to the routing engineer's `UsageStore` when the app has one."""
    from cliproxy import appkeys

    key = getattr(appkeys, "USAGE", None)
    if key is None or key not in app:
        return lambda: None
    unsubscribe: Callable[[], None] = app[key].subscribe(callback)
    return unsubscribe
