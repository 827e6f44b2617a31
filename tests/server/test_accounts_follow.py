"""Worker processes follow each other's account changes; one record this process cannot load (written
by another version, or by hand) must not stop it from taking in every later change."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from cliproxy.accounts.service import Accounts
from cliproxy.config.model import Config
from cliproxy.server.services import follow_accounts

PATIENCE_SECONDS = 5.0


def write_row(path: Path, table: str, key: str, data: str) -> None:
    """Another process's commit: a separate connection, so the follower sees a new `data_version`."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"INSERT OR REPLACE INTO {table} (id, data) VALUES (?, ?)", (key, data))
    conn.close()


async def test_follower_outlives_a_record_it_cannot_load(tmp_path: Path) -> None:
    path = tmp_path / "accounts.db"
    config = Config()
    accounts = Accounts(lambda: config)
    await accounts.open(path, shared=True)
    following = asyncio.create_task(follow_accounts(accounts, interval=0.01))
    try:
        # A session row without its fields: loading it raises TypeError, not a storage error.
        write_row(path, "sessions", "bad", '{"unexpected": 1}')
        await asyncio.sleep(0.2)
        assert not following.done(), "the follower ended on a record it could not load"
        write_row(path, "sessions", "bad", '{"digest": "bad", "email": "a@b.c", "created": 0, "expires": 0}')
        write_row(path, "teams", "later", '{"name": "later"}')
        deadline = time.monotonic() + PATIENCE_SECONDS
        while "later" not in accounts.teams and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert "later" in accounts.teams
    finally:
        following.cancel()
        await asyncio.wait([following])
        await accounts.close()
