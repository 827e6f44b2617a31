"""`enable_wal`: a file another process is switching to WAL mode answers "database is locked" at
once (no busy wait); the switch is retried until it goes through, and other errors are not."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cliproxy.sqlite_wal import enable_wal


class LockedAtFirst:
    """A connection whose first `failures` statements meet a sibling's lock (as SQLite reports it)."""

    def __init__(self, path: Path, failures: int, message: str = "database is locked") -> None:
        self.conn = sqlite3.connect(path)
        self.failures, self.message, self.calls = failures, message, 0

    def execute(self, sql: str) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise sqlite3.OperationalError(self.message)
        return self.conn.execute(sql)


def test_a_locked_file_is_switched_once_the_sibling_lets_go(tmp_path: Path) -> None:
    conn = LockedAtFirst(tmp_path / "usage.sqlite3", failures=3)
    enable_wal(conn, pause=0)  # type: ignore[arg-type]
    assert conn.calls == 4
    assert conn.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_other_errors_and_a_lock_that_never_ends_are_raised(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        enable_wal(LockedAtFirst(tmp_path / "a.sqlite3", 1, "disk I/O error"), pause=0)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(LockedAtFirst(tmp_path / "b.sqlite3", 10), attempts=5, pause=0)  # type: ignore[arg-type]
