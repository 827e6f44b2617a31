"""Opening an SQLite file in WAL mode when other processes may be opening it at the same moment.

Worker processes (`workers:` above 1) open the same usage and accounts files when they start.
Switching a file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once
for it, without waiting out the connection's busy timeout, when a sibling holds a lock: so the
switch is retried for a few seconds. Once a file is in WAL mode the pragma takes no lock at all.
"""

from __future__ import annotations

import sqlite3
import time

WAL_ATTEMPTS = 100
WAL_PAUSE_SECONDS = 0.05


def enable_wal(conn: sqlite3.Connection, *, attempts: int = WAL_ATTEMPTS, pause: float = WAL_PAUSE_SECONDS) -> None:
    """`PRAGMA journal_mode=WAL` on `conn` (blocking: call it on the database's own thread)."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause)
