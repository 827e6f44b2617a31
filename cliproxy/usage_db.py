"""Usage records in an embedded SQLite file, so per-key budgets and allowances survive restarts.

Records arrive synchronously from `UsageStore` subscribers on the event loop; `add` only appends
to a list. A background task flushes the list in batches on one dedicated worker thread (the
SQLite connection lives and dies on that thread), so the loop never waits on disk. Retention is
bounded twice: rows older than `RETENTION_DAYS` and rows beyond `MAX_ROWS` are deleted, checked
at open and then at most once per `PRUNE_INTERVAL`.

At startup `daily_totals` gives the per-key, per-day sums the policy ledger needs; from then on
the ledger counts in memory and the file is only written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from cliproxy import jsonio
from cliproxy.sqlite_wal import enable_wal

log = logging.getLogger(__name__)

T = TypeVar("T")

RETENTION_DAYS = 90
MAX_ROWS = 1_000_000
FLUSH_DELAY = 1.0  # seconds to gather a batch after the first record arrives (fewer, larger commits)
PRUNE_INTERVAL = 3600.0
MAX_PENDING = 100_000  # beyond this (disk stuck), the oldest unsaved records are dropped
DISABLED_VALUES = frozenset({"off", "none", "false", "disabled"})

COLUMNS: tuple[tuple[str, str], ...] = (
    ("timestamp", "REAL NOT NULL"),
    ("request_id", "TEXT"),
    ("client_key", "TEXT NOT NULL"),
    ("credential_id", "TEXT"),
    ("auth_index", "TEXT"),
    ("provider", "TEXT"),
    ("model", "TEXT"),
    ("alias", "TEXT"),
    ("client_dialect", "TEXT"),
    ("upstream_dialect", "TEXT"),
    ("endpoint", "TEXT"),
    ("status", "INTEGER"),
    ("failed", "INTEGER"),
    ("latency_ms", "REAL"),
    ("ttft_ms", "REAL"),
    ("input_tokens", "INTEGER"),
    ("output_tokens", "INTEGER"),
    ("cached_tokens", "INTEGER"),
    ("reasoning_tokens", "INTEGER"),
    ("cache_creation_tokens", "INTEGER"),
    ("total_tokens", "INTEGER"),
    ("cost_usd", "REAL"),
    ("stream", "INTEGER"),
    ("attempts", "INTEGER"),  # more than 1: the request failed over (or was retried)
)
_NAMES = tuple(name for name, _ in COLUMNS)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, "
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    + ")",
    # One index: pruning and the startup totals select by time. A (client_key, timestamp) index
    # served no query and cost every insert about a sixth more; files that have it lose it.
    "CREATE INDEX IF NOT EXISTS usage_time ON usage (timestamp)",
    "DROP INDEX IF EXISTS usage_key_time",
)
# Rows per INSERT statement. Python's sqlite3 lets go of the GIL around every statement step, so
# one row per step (`executemany`) traded the GIL between this writer thread and the event loop
# once per request; 50 rows per statement (1,150 parameters) makes that 50 times rarer and is no
# slower per row.
ROWS_PER_INSERT = 50


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def insert_rows(count: int) -> str:
    """An INSERT of `count` rows in one statement."""
    row = "(" + ",".join("?" * len(_NAMES)) + ")"
    return f"INSERT INTO usage ({', '.join(_NAMES)}) VALUES " + ",".join([row] * count)


Row = tuple[Any, ...]
DailyTotal = tuple[str, int, int, int, float, int]  # key, day number, requests, tokens, cost, unknown-cost
# bucket start (unix seconds), key, model, requests, failed, failed over, tokens, known cost
HistoryRow = tuple[int, str, str, int, int, int, int, float]
_TOKENS = (
    "CASE WHEN total_tokens > 0 THEN total_tokens ELSE "
    "input_tokens + output_tokens + cached_tokens + cache_creation_tokens END"
)


def resolve_path(setting: str, auth_dir: Path, config_dir: Path) -> Path | None:
    """`usage-db` from the config: '' → `<auth-dir>/usage.sqlite3`; `off` → None; relative → config dir."""
    value = setting.strip()
    if value.lower() in DISABLED_VALUES:
        return None
    if not value:
        return auth_dir / "usage.sqlite3"
    path = Path(value).expanduser()
    return path if path.is_absolute() else config_dir / path


# sqlite3 binds exact ints, floats and strs directly but runs its whole adaptation protocol (two
# failed attribute lookups) for anything else; registered, a bool costs one dict hit instead.
sqlite3.register_adapter(bool, int)
_ROW = attrgetter(*_NAMES)  # one C call per record (sqlite stores bools as the integers 0 and 1)


def row_of(record: Any) -> Row:
    try:
        row: Row = _ROW(record)
        return row
    except AttributeError:  # a record-like object without every field (tests, older records)
        return tuple(getattr(record, name, None) for name in _NAMES)


class UsageDB:
    """One SQLite file of usage rows; every method that touches it runs on its own thread."""

    def __init__(self, path: Path, *, retention_days: int = RETENTION_DAYS, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self.retention_days = retention_days
        self.max_rows = max_rows
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-db")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[Row] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.written = 0  # rows committed by this process (for tests and status)

    @property
    def is_open(self) -> bool:
        """Opened and its writer running (what `/readyz` asks); the file itself may come with the first row."""
        return self._task is not None and not self._task.done()

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    # -- lifecycle (event loop) ------------------------------------------------------------------

    async def open(self) -> None:
        """Open an existing file (schema, prune) and start the background writer.

        A missing file (and auth-dir) is only created by the first write, so a server that never
        served a request leaves no trace on disk.
        """
        if await self._run(self.path.exists):
            await self._run(self._open)
        self._task = asyncio.create_task(self._flusher(), name="usage-db-writer")

    async def close(self) -> None:
        """Write what is pending and close the file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._flush()
        finally:
            await self._run(self._close)
            self._pool.shutdown(wait=False)

    def add(self, record: Any) -> None:
        """Queue one usage record (called on the loop, never blocks)."""
        pending = self._pending
        pending.append(row_of(record))
        if len(pending) > MAX_PENDING:
            del pending[: len(pending) - MAX_PENDING]
        if not self._wake.is_set():
            self._wake.set()

    async def daily_totals(self, since: float) -> list[DailyTotal]:
        """Per key and UTC day since `since`: requests, tokens, known cost, requests of unknown cost."""
        return await self._run(self._daily_totals, since)

    async def history(
        self, since: float, bucket_seconds: int, offset_seconds: int = 0, *, keys: Iterable[str] | None = None
    ) -> list[HistoryRow]:
        """Per time bucket, client key and model since `since`: requests, failures, failovers, tokens, cost.

        Buckets start at multiples of `bucket_seconds` shifted by `offset_seconds` (a viewer's UTC
        offset, so daily buckets start at its midnight). `keys`: only these client keys (a member's
        own), so one member's view does not add up every key's rows. The query runs on the writer's
        thread.
        """
        wanted = None if keys is None else jsonio.dumps(sorted(set(keys))).decode()
        return await self._run(self._history, since, bucket_seconds, offset_seconds, wanted)

    async def flush(self) -> None:
        """Write everything queued so far (tests; shutdown; a member's usage view, so the request
        just answered counts)."""
        await self._flush()

    # -- background ------------------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_DELAY)
            await self._flush()

    async def _flush(self) -> None:
        self._wake.clear()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self._run(self._write, batch)
        except (sqlite3.Error, OSError) as exc:
            log.error("usage-db: could not write %d usage rows to %s: %s", len(batch), self.path, exc)

    # -- worker thread ---------------------------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            self.path.touch(mode=0o600)
        conn = sqlite3.connect(self.path, timeout=10.0)
        enable_wal(conn)  # sibling worker processes may be opening the file too
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            conn.execute(statement)
        have = {str(row[1]) for row in conn.execute("PRAGMA table_info(usage)")}
        for name, kind in COLUMNS:  # a file written by an older version lacks the newer columns
            if name not in have:
                try:
                    conn.execute(f"ALTER TABLE usage ADD COLUMN {name} {kind.removesuffix(' NOT NULL')}")
                except sqlite3.OperationalError as exc:  # a sibling worker process added it first
                    if "duplicate column" not in str(exc):
                        raise
        conn.commit()
        self._conn = conn
        self._prune()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, batch: list[Row]) -> None:
        if self._conn is None:
            self._open()
        conn = self._conn
        assert conn is not None
        with conn:
            for start in range(0, len(batch), ROWS_PER_INSERT):
                rows = batch[start : start + ROWS_PER_INSERT]
                conn.execute(insert_rows(len(rows)), list(chain.from_iterable(rows)))
        self.written += len(batch)
        if time.monotonic() - self._last_prune > PRUNE_INTERVAL:
            self._prune()

    def _prune(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._last_prune = time.monotonic()
        cutoff = time.time() - self.retention_days * 86_400
        with conn:
            conn.execute("DELETE FROM usage WHERE timestamp < ?", (cutoff,))
            conn.execute(
                "DELETE FROM usage WHERE id <= (SELECT id FROM usage ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.max_rows,),
            )

    def _daily_totals(self, since: float) -> list[DailyTotal]:
        conn = self._conn
        if conn is None:
            return []
        cursor = conn.execute(
            "SELECT client_key, CAST(timestamp / 86400 AS INTEGER) AS day, COUNT(*), "
            f"COALESCE(SUM({_TOKENS}), 0), COALESCE(SUM(cost_usd), 0.0), SUM(cost_usd IS NULL) "
            "FROM usage WHERE timestamp >= ? GROUP BY client_key, day",
            (since,),
        )
        return [(str(k), int(d), int(n), int(t), float(c), int(u)) for k, d, n, t, c, u in cursor]

    def _history(self, since: float, bucket: int, offset: int, keys: str | None) -> list[HistoryRow]:
        """`keys`: a JSON array of client keys (one parameter however many), or None for all."""
        conn = self._conn
        if conn is None:  # nothing written yet
            return []
        only = "" if keys is None else " AND client_key IN (SELECT value FROM json_each(?))"
        cursor = conn.execute(
            "SELECT CAST((timestamp + ?) / ? AS INTEGER) * ? - ?, client_key, "
            "COALESCE(NULLIF(alias, ''), model, ''), COUNT(*), COALESCE(SUM(failed), 0), "
            f"COALESCE(SUM(attempts > 1), 0), COALESCE(SUM({_TOKENS}), 0), COALESCE(SUM(cost_usd), 0.0) "
            f"FROM usage WHERE timestamp >= ?{only} GROUP BY 1, 2, 3 ORDER BY 1",
            (offset, bucket, bucket, offset, since, *(() if keys is None else (keys,))),
        )
        return [
            (int(t), str(k), str(m), int(n), int(f), int(o), int(tok), float(c)) for t, k, m, n, f, o, tok, c in cursor
        ]

    def count(self) -> int:
        """Rows in the file (blocking; tests and the CLI only)."""
        conn = sqlite3.connect(self.path)
        try:
            (n,) = conn.execute("SELECT COUNT(*) FROM usage").fetchone()
            return int(n)
        finally:
            conn.close()
