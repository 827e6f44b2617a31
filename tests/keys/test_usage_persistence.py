"""Usage per key survives a restart: the app writes it to SQLite (under auth-dir, or `usage-db`),
a new app on the same config reads it back, and budgets and token allowances count from it.
Retention is bounded by age and by row count."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import openai
import pytest

from cliproxy.usage_db import UsageDB
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


def config(base: str, extra: str) -> str:
    return f"""
host: 127.0.0.1
{extra}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-upstream-0001
    models:
      - name: gpt-4o
api-keys:
  - {{name: thrifty, key: sk-thrifty-0001, max-budget-usd: 0.00001, budget-period: day}}
  - {{name: small, key: sk-small-0001, max-tokens-per-day: 8}}
"""


async def ask(proxy: Proxy, key: str) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=30) as client:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


async def whoami(proxy: Proxy, key: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.get(proxy.url + "/v1/cliproxy/whoami", headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        data: dict[str, Any] = await r.json()
        return data


@pytest.mark.parametrize("where", ["auth-dir", "usage-db"])
async def test_budgets_and_allowances_survive_a_restart(
    where: str, tmp_path: Path, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    if where == "auth-dir":
        extra, db_path = f"auth-dir: {tmp_path / 'auths'}", tmp_path / "auths" / "usage.sqlite3"
    else:
        extra, db_path = "usage-db: ./state/usage.db", tmp_path / "state" / "usage.db"  # relative to the config
    text = config(base, extra)

    first = await start_proxy(text)
    await ask(first, "sk-thrifty-0001")
    await ask(first, "sk-small-0001")
    before = await whoami(first, "sk-thrifty-0001")
    await first.server.close()  # shutdown writes what is pending
    assert db_path.is_file() and db_path.stat().st_mode & 0o077 == 0

    second = await start_proxy(text)
    after = await whoami(second, "sk-thrifty-0001")
    assert after["usage"]["cost_usd_this_period"] == pytest.approx(before["usage"]["cost_usd_this_period"])
    assert after["usage"]["requests_today"] == 1
    assert (await whoami(second, "sk-small-0001"))["usage"]["tokens_today"] == 8
    client = openai.AsyncOpenAI(base_url=second.url + "/v1", api_key="sk-thrifty-0001", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError, match="budget of API key 'thrifty' is used up"):
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client = openai.AsyncOpenAI(base_url=second.url + "/v1", api_key="sk-small-0001", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError, match="daily token allowance"):
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


async def test_usage_db_off_keeps_nothing_on_disk(
    tmp_path: Path, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, f"auth-dir: {tmp_path / 'auths'}\nusage-db: off"))
    await ask(proxy, "sk-small-0001")
    await proxy.server.close()
    assert not (tmp_path / "auths" / "usage.sqlite3").exists()


def record(ts: float, key: str = "k") -> SimpleNamespace:
    return SimpleNamespace(timestamp=ts, client_key=key, total_tokens=10, cost_usd=0.5)


async def test_retention_is_bounded_by_age_and_row_count(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    db = UsageDB(path, retention_days=30, max_rows=5)
    await db.open()
    now = time.time()
    db.add(record(now - 40 * 86_400, "old"))  # beyond the retention age
    for i in range(7):
        db.add(record(now - i))
    await db.flush()
    await db.close()

    reopened = UsageDB(path, retention_days=30, max_rows=5)
    await reopened.open()  # prunes on open
    try:
        with sqlite3.connect(path) as conn:
            keys = [k for (k,) in conn.execute("SELECT client_key FROM usage")]
        assert keys == ["k"] * 5
        totals = await reopened.daily_totals(now - 86_400 * 2)
        assert sum(t[2] for t in totals) == 5 and sum(t[4] for t in totals) == pytest.approx(2.5)
    finally:
        await reopened.close()


async def test_a_large_batch_is_written_whole_and_in_order(tmp_path: Path) -> None:
    """Rows go out several per INSERT statement; a batch that is not a multiple of that is whole."""
    from cliproxy.usage_db import ROWS_PER_INSERT

    path = tmp_path / "usage.sqlite3"
    db = UsageDB(path)
    await db.open()
    count = ROWS_PER_INSERT * 2 + 7
    now = time.time()
    for i in range(count):
        db.add(SimpleNamespace(timestamp=now + i, client_key=f"k{i}", total_tokens=i, cost_usd=None, failed=i % 2 == 0))
    await db.flush()
    await db.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT client_key, total_tokens, cost_usd, failed FROM usage ORDER BY id").fetchall()
        indexes = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    assert rows == [(f"k{i}", i, None, 1 if i % 2 == 0 else 0) for i in range(count)]
    assert indexes == ["usage_time"]
