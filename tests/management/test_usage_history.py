"""`GET /usage/history` over HTTP: requests from the OpenAI SDK through a fake upstream land in the
usage database, and come back per hour or day, client key and model, with errors and failovers."""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import openai
import pytest

from cliproxy.server.services import SERVICES
from cliproxy.usage_db import COLUMNS, UsageDB
from tests.fakes.fixtures import Proxy, Starter, start_proxy, upstream
from tests.fakes.upstreams import FakeUpstream
from tests.management.client import MANAGEMENT_BLOCK, VIEWER, Mgmt
from tests.management.test_usage_api import record

__all__ = ["start_proxy", "upstream"]  # fixtures

TEAM_KEY, PLAIN_KEY = "sk-team-history-0001", "sk-plain-history-0002"


def config(base: str, extra: str = "") -> str:
    return f"""
host: 127.0.0.1
{extra}
routing: {{strategy: fill-first}}
api-keys:
  - {PLAIN_KEY}
  - {{name: team-a, key: {TEAM_KEY}}}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-upstream-first
      - api-key: sk-upstream-second
    models:
      - name: gpt-4o
{MANAGEMENT_BLOCK}"""


async def ask(proxy: Proxy, key: str) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=30) as client:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        for name in ("requests", "failed", "failovers", "tokens", "cost_usd"):
            out[row["client_key"]][name] += row[name]
    return out


async def test_history_per_key_and_model_with_errors_and_failovers(
    tmp_path: Path, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base, f"auth-dir: {tmp_path / 'auths'}"))
    fake.fail(500, times=1)  # the first attempt fails: the request fails over to the other key
    await ask(proxy, TEAM_KEY)
    await ask(proxy, TEAM_KEY)
    await ask(proxy, PLAIN_KEY)
    fake.fail(400, times=1)  # refused by the upstream: a failed request, no failover
    with pytest.raises(openai.BadRequestError):
        await ask(proxy, TEAM_KEY)
    services = proxy.server.app[SERVICES]
    assert services.usage_db is not None
    await services.usage_db.flush()
    mgmt = Mgmt(proxy.server)

    now = time.time()
    reply = await mgmt.get("/usage/history")
    assert reply.status == 200, reply
    hourly = reply.json()
    assert (hourly["enabled"], hourly["bucket"], hourly["bucket_seconds"]) == (True, "hour", 3600)
    assert hourly["end"] - hourly["start"] == 24 * 3600 and hourly["start"] % 3600 == 0
    assert hourly["start"] <= now < hourly["end"]
    assert {row["model"] for row in hourly["rows"]} == {"gpt-4o"}
    assert all(hourly["start"] <= row["time"] < hourly["end"] and row["time"] % 3600 == 0 for row in hourly["rows"])
    per_key = totals(hourly["rows"])
    assert set(per_key) == {"team-a", "sk-…0002"}  # key names, or the redacted key: never a key
    team = per_key["team-a"]
    assert (team["requests"], team["failed"], team["failovers"]) == (3, 1, 1)
    assert team["tokens"] > 0 and per_key["sk-…0002"]["requests"] == 1

    daily = (await mgmt.get("/usage/history?bucket=day&count=7&tz=120")).json()
    assert daily["bucket_seconds"] == 86400 and daily["end"] - daily["start"] == 7 * 86400
    assert (daily["start"] + 7200) % 86400 == 0  # midnight at UTC+2
    assert totals(daily["rows"])["team-a"]["requests"] == 3

    viewer = await Mgmt(proxy.server, VIEWER).get("/usage/history")
    assert viewer.status == 200 and totals(viewer.json()["rows"]) == per_key  # names are not secrets
    for query in ("bucket=week", "count=0", "count=337", "bucket=day&count=91", "tz=abc", "tz=900"):
        assert (await mgmt.get(f"/usage/history?{query}")).status == 400, query


async def test_without_a_usage_database_there_is_no_history(
    tmp_path: Path, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, f"auth-dir: {tmp_path / 'auths'}\nusage-db: off"))
    await ask(proxy, TEAM_KEY)
    assert (await Mgmt(proxy.server).get("/usage/history")).json() == {"enabled": False, "bucket": "hour", "rows": []}


async def test_a_file_from_before_the_attempts_column_gains_it(tmp_path: Path) -> None:
    """Usage files written before failovers were kept open, get the column, and keep their rows."""
    path = tmp_path / "usage.sqlite3"
    old = [(name, kind) for name, kind in COLUMNS if name != "attempts"]
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE usage (id INTEGER PRIMARY KEY, {', '.join(f'{n} {k}' for n, k in old)})")
    conn.execute(
        "INSERT INTO usage (timestamp, client_key, failed, total_tokens) VALUES (?, 'old', 0, 7)", (time.time(),)
    )
    conn.commit()
    conn.close()

    db = UsageDB(path)
    await db.open()
    db.add(record(client_key="new", attempts=2))
    await db.flush()
    rows = await db.history(time.time() - 3600, 3600)
    await db.close()
    assert {(key, requests, failovers) for _, key, _, requests, _, failovers, _, _ in rows} == {
        ("old", 1, 0),
        ("new", 1, 1),
    }


async def test_history_of_some_client_keys_only(tmp_path: Path) -> None:
    """A member's usage view asks for its own keys: the query adds up those rows and no others."""
    db = UsageDB(tmp_path / "usage.sqlite3")
    await db.open()
    for key in ("mine-1", "mine-2", "theirs", "theirs"):
        db.add(record(client_key=key))
    await db.flush()
    since = time.time() - 3600
    try:
        assert {row[1] for row in await db.history(since, 3600, keys=["mine-1", "mine-2"])} == {"mine-1", "mine-2"}
        assert await db.history(since, 3600, keys=[]) == []
        assert {row[1] for row in await db.history(since, 3600)} == {"mine-1", "mine-2", "theirs"}
    finally:
        await db.close()
