"""Accounting: every usage record is priced, counted against its key's limits and persisted.

One subscriber does all three in that order, so every stored row carries its cost. Records that
finish before the price table has loaded wait in memory and are counted as soon as it is there.
The key's counters are filled from the usage database at startup (`restore_ledger`), before the
server accepts requests, so allowances and budgets survive restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from cliproxy.policy.ledger import DAY, LEDGER_DAYS
from cliproxy.policy.state import KeyPolicyState, LocalKeyPolicyState
from cliproxy.policy.teams import LocalTeamPolicyState, TeamPolicyState
from cliproxy.pricing import Prices, PriceTable
from cliproxy.usage import UsageRecord
from cliproxy.usage_db import UsageDB

log = logging.getLogger(__name__)


def record_cost(prices: PriceTable, record: UsageRecord) -> float | None:
    """USD of one usage record: by the upstream model's price, else the client-visible id's."""
    names = (record.model,) if not record.alias or record.alias == record.model else (record.model, record.alias)
    for model in names:
        cost = prices.cost(
            model,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cached_tokens=record.cached_tokens,
            cache_creation_tokens=record.cache_creation_tokens,
            input_includes_cached=record.upstream_dialect != "claude",
        )
        if cost is not None:
            return cost
    return None


def record_tokens(record: UsageRecord) -> int:
    total: int = record.total_tokens or (
        record.input_tokens + record.output_tokens + record.cached_tokens + record.cache_creation_tokens
    )
    return total


TeamOf = Callable[[str], str | None]  # a usage record's client key id → the team its spend counts for


def no_team(key_id: str) -> str | None:
    return None


class UsageAccountant:
    """The usage subscriber: prices a record, counts it into the key's (and its team's) counters,
    persists it. Per-user figures are the sums of the user's keys, so they need no counter here."""

    __slots__ = ("_pending", "db", "prices", "state", "team_of", "teams")

    def __init__(
        self,
        state: KeyPolicyState,
        prices: Prices,
        db: UsageDB | None,
        *,
        teams: TeamPolicyState | None = None,
        team_of: TeamOf = no_team,
    ) -> None:
        self.state = state
        self.prices = prices
        self.db = db
        self.teams = teams
        self.team_of = team_of
        self._pending: list[UsageRecord] = []
        prices.start_loading().add_done_callback(self._drain)

    def account(self, record: UsageRecord) -> None:
        table = self.prices.table
        if table is None:  # the price table is still loading: count these when it is ready
            self._pending.append(record)
            return
        if record.cost_usd is None:
            record.cost_usd = record_cost(table, record)
        tokens = record_tokens(record)
        self.state.add_usage(record.client_key, record.timestamp, tokens=tokens, cost_usd=record.cost_usd)
        if self.teams is not None:
            team = self.team_of(record.client_key)
            if team:
                self.teams.add_usage(team, record.timestamp, tokens=tokens, cost_usd=record.cost_usd)
        if self.db is not None:
            self.db.add(record)

    def _drain(self, _: object) -> None:
        if self.prices.table is None:  # the load failed: every price is unknown
            self.prices.table = PriceTable({})
        batch, self._pending = self._pending, []
        for record in batch:
            self.account(record)


async def open_usage_db(path: Any) -> UsageDB | None:
    """The usage database at `path` (None: none configured, or it cannot be used; usage stays in memory)."""
    if path is None:
        return None
    db = UsageDB(path)
    try:
        await db.open()
    except (OSError, sqlite3.Error) as exc:
        log.error("usage-db: cannot use %s (%s); usage is kept in memory only", path, exc)
        await db.close()
        return None
    return db


async def restore_ledger(
    db: UsageDB,
    state: LocalKeyPolicyState,
    teams: LocalTeamPolicyState | None = None,
    team_of: TeamOf = no_team,
) -> None:
    """Fill the in-process counters (per key, and per team through `team_of`) with the persisted
    daily totals of the last `LEDGER_DAYS`."""
    try:
        totals = await db.daily_totals(time.time() - LEDGER_DAYS * DAY)
    except (OSError, sqlite3.Error) as exc:
        log.error("usage-db: cannot read the daily totals (%s); allowances count from now", exc)
        return
    for key_id, day, requests, tokens, cost, unknown in totals:
        state.ledger.add(key_id, day, requests=requests, tokens=tokens, cost_usd=cost, unknown=unknown)
        team = team_of(key_id) if teams is not None else None
        if teams is not None and team:
            teams.ledger.add(team, day, requests=requests, tokens=tokens, cost_usd=cost, unknown=unknown)
