"""The accounts store on disk: one embedded SQLite file of users, teams, keys, invitations, sessions.

Each record is one row: its id, and the record as JSON (so a new field needs no migration). The
file holds no secret in clear: bcrypt hashes of passwords, SHA-256 digests of keys, tokens,
invitation links and session ids, and the random key that signs session cookies (the file is
0600 in a 0700 directory, like the usage database beside it). As in `usage_db`, the connection
lives on one worker thread, so the event loop never waits on disk; the service above keeps every
record in memory and writes through.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import sqlite3
import typing
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cliproxy.accounts.model import AccountKey, Invitation, Team, User
from cliproxy.sqlite_wal import enable_wal

T = TypeVar("T")
R = TypeVar("R")

TABLES = ("users", "teams", "access_groups", "invitations", "keys", "sessions")
SCHEMA = (
    *(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, data TEXT NOT NULL)" for table in TABLES),
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
DISABLED_VALUES = frozenset({"off", "none", "false", "disabled"})
FILE_NAME = "accounts.sqlite3"


def resolve_accounts_path(setting: str, usage_db: Path | None, auth_dir: Path, config_dir: Path) -> Path | None:
    """`accounts-db`: '' → beside the usage database (else in auth-dir); `off` → None; relative → config dir."""
    value = setting.strip()
    if value.lower() in DISABLED_VALUES:
        return None
    if not value:
        return (usage_db.parent if usage_db is not None else auth_dir) / FILE_NAME
    path = Path(value).expanduser()
    return path if path.is_absolute() else config_dir / path


def to_json(record: Any) -> str:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"))


def from_json(cls: type[T], text: str) -> T:
    """A record from its JSON; lists become tuples where the field is a tuple, unknown names are dropped."""
    data = json.loads(text)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        origin = typing.get_origin(hints[f.name])
        if origin is tuple and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


@dataclasses.dataclass
class Snapshot:
    """Every record, as read at open."""

    users: list[User]
    teams: list[Team]
    access_groups: dict[str, tuple[str, ...]]
    invitations: list[Invitation]
    keys: list[AccountKey]
    sessions: list[dict[str, Any]]
    signing_key: bytes


class AccountsDB:
    """One SQLite file; every method that touches it runs on its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounts-db")
        self._conn: sqlite3.Connection | None = None
        self._signing = secrets.token_hex(32)  # replaced by the file's own once there is one
        self._version = 0  # `PRAGMA data_version` at the last read

    async def _run(self, func: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def open(self, *, create: bool = False) -> Snapshot:
        """Every record. `create`: make the file now (worker processes: they must share its signing key)."""
        return await self._run(self._open, create)

    async def changes(self) -> Snapshot | None:
        """Every record again when another connection (another worker process, an operator command)
        has committed since the last look; None when nothing changed. SQLite's `data_version` tells,
        without reading a table."""
        return await self._run(self._changes)

    async def close(self) -> None:
        await self._run(self._close)
        self._pool.shutdown(wait=False)

    async def put(self, table: str, key: str, record: Any) -> None:
        """Insert or replace one record (a dataclass, or plain JSON-able data)."""
        text = to_json(record) if dataclasses.is_dataclass(record) else json.dumps(record, separators=(",", ":"))
        await self._run(self._write, [(table, key, text)])

    async def put_many(self, rows: Iterable[tuple[str, str, Any]]) -> None:
        """Several records in one transaction (a user and the invitation that made them)."""
        batch = [(t, k, to_json(r) if dataclasses.is_dataclass(r) else json.dumps(r)) for t, k, r in rows]
        await self._run(self._write, batch)

    async def delete(self, table: str, keys: Iterable[str]) -> None:
        await self._run(self._delete, table, list(keys))

    # -- worker thread ---------------------------------------------------------------------------

    def _open(self, create: bool = False) -> Snapshot:
        """Read an existing file. A missing one is only created by the first write, so a proxy
        nobody signed up to leaves no trace on disk (as the usage database does)."""
        if not self.path.exists() and not create:
            self._signing = secrets.token_hex(32)
            return Snapshot([], [], {}, [], [], [], bytes.fromhex(self._signing))
        conn = self._connect()
        self._conn = conn
        self._version = self._data_version(conn)
        return self._read(conn)

    @staticmethod
    def _data_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _changes(self) -> Snapshot | None:
        conn = self._conn
        if conn is None:
            if not self.path.exists():
                return None
            conn = self._conn = self._connect()  # another process made the file: its signing key wins
            self._version = self._data_version(conn)
            return self._read(conn)
        version = self._data_version(conn)
        if version == self._version:
            return None
        self._version = version
        return self._read(conn)

    def _read(self, conn: sqlite3.Connection) -> Snapshot:
        signing = self._signing

        def rows(table: str) -> list[tuple[str, str]]:
            return [(str(k), str(v)) for k, v in conn.execute(f"SELECT id, data FROM {table}")]

        return Snapshot(
            users=[from_json(User, data) for _, data in rows("users")],
            teams=[from_json(Team, data) for _, data in rows("teams")],
            access_groups={name: tuple(json.loads(data)) for name, data in rows("access_groups")},
            invitations=[from_json(Invitation, data) for _, data in rows("invitations")],
            keys=[from_json(AccountKey, data) for _, data in rows("keys")],
            sessions=[json.loads(data) for _, data in rows("sessions")],
            signing_key=bytes.fromhex(signing),
        )

    def _connect(self) -> sqlite3.Connection:
        """Open (or create, 0600 in a 0700 directory) the file, with its schema and signing key."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            self.path.touch(mode=0o600)
        conn = sqlite3.connect(self.path, timeout=10.0)
        enable_wal(conn)  # sibling worker processes may be opening the file too
        for statement in SCHEMA:
            conn.execute(statement)
        # OR IGNORE: two worker processes may create the file at once; both then use the first key.
        conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('signing-key', ?)", (self._signing,))
        conn.commit()
        self._signing = str(conn.execute("SELECT value FROM meta WHERE name = 'signing-key'").fetchone()[0])
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, batch: list[tuple[str, str, str]]) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        with conn:
            for table, key, text in batch:
                assert table in TABLES
                conn.execute(f"INSERT OR REPLACE INTO {table} (id, data) VALUES (?, ?)", (key, text))

    def _delete(self, table: str, keys: list[str]) -> None:
        conn = self._conn
        assert table in TABLES
        if conn is None:  # nothing was ever written: nothing to delete
            return
        with conn:
            conn.executemany(f"DELETE FROM {table} WHERE id = ?", [(k,) for k in keys])
