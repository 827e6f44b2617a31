"""The auth-dir on disk: loading it, and `CredentialStore`, the one writer of credential files.

Loading never writes. As in CLIProxyAPI, only `*.json` direct children are read and files of a
type no provider serves are skipped and reported, never rewritten.

Every write (refresh, login, management edits and status toggles, uploads, deletes, key
imports) goes through `CredentialStore`: one lock per file, and a read-modify-write in one step
under it, so two writers never lose each other's change. A writer that has to wait for the
network (a token refresh) reads again under the lock and merges only its own fields. Worker
processes (`workers:` above 1) each have their own store: the read-modify-write also holds an
exclusive `flock` on the auth-dir, so theirs take turns too. Files are
replaced atomically with mode 0600; the blocking file work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cliproxy.config.write import atomic_write_bytes, directory_lock
from cliproxy.credentials.files import (
    FILE_MODE,
    IGNORED_TYPES,
    AuthFileCredential,
    CredentialFileError,
    FileRules,
    SkippedFile,
    check_file_name,
    credential_from_metadata,
    credential_type,
    encode_credential,
    parse_json_object,
)
from cliproxy.credentials.locks import KeyedLocks
from cliproxy.credentials.registry import BUILTIN, ProviderRegistry

log = logging.getLogger(__name__)

# `make(current)` builds the new file contents from the current ones (None: missing or unreadable).
Make = Callable[[dict[str, Any] | None], Mapping[str, Any]]


class UnreadableFile(CredentialFileError):
    """The file as it is on disk cannot be parsed (the message says why)."""


@dataclass(frozen=True)
class LoadResult:
    """What a scan of auth-dir produced: usable credentials, invalid files, skipped files."""

    credentials: tuple[AuthFileCredential, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- loading


def load_credential_file(path: Path, auth_dir: Path, rules: Mapping[str, FileRules]) -> AuthFileCredential:
    """Read and parse one file; raises `CredentialFileError` or `SkippedFile`."""
    try:
        raw = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise CredentialFileError(f"cannot read: {exc.strerror or exc}") from None
    data = parse_json_object(raw)
    cred_type = credential_type(data)
    if cred_type in IGNORED_TYPES:
        raise SkippedFile(f"type {cred_type or '(empty)'!r} is not served by cliproxy")
    if cred_type not in rules:
        raise SkippedFile(f"unsupported credential type {cred_type!r}")
    insecure = bool(mode & 0o077)
    if insecure:
        log.warning("%s is readable by group or others (mode %o); run: chmod 600 %s", path.name, mode, path.as_posix())
    return credential_from_metadata(
        data,
        path=path,
        auth_dir=auth_dir,
        rules=rules,
        sha256=hashlib.sha256(raw).hexdigest(),
        insecure_mode=insecure,
    )


def load_auth_dir(auth_dir: Path, registry: ProviderRegistry = BUILTIN) -> LoadResult:
    """Scan `auth_dir` (non-recursive, `*.json` only). A missing directory is an empty result."""
    credentials: list[AuthFileCredential] = []
    errors: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    try:
        entries = sorted(auth_dir.iterdir())
    except FileNotFoundError:
        return LoadResult()
    except OSError as exc:
        return LoadResult(errors=((str(auth_dir), f"cannot list auth-dir: {exc.strerror or exc}"),))
    for path in entries:
        if not path.name.endswith(".json") or not path.is_file():
            continue
        try:
            credentials.append(load_credential_file(path, auth_dir, registry.file_rules))
        except SkippedFile as exc:
            log.info("auth-dir: skipping %s: %s", path.name, exc)
            skipped.append((path.name, str(exc)))
        except CredentialFileError as exc:
            log.warning("auth-dir: invalid credential file %s: %s", path.name, exc)
            errors.append((path.name, str(exc)))
    return LoadResult(tuple(credentials), tuple(errors), tuple(skipped))


# --------------------------------------------------------------------------- writing


def write_credential_file(path: Path, data: Mapping[str, Any]) -> bool:
    """Atomically replace `path` with `data` as JSON, mode 0600. Returns False when unchanged.

    The low-level step under `CredentialStore`'s lock; blocking (fsync).
    """
    check_file_name(path.name)
    try:
        if json.loads(path.read_bytes()) == dict(data):
            if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
                os.chmod(path, FILE_MODE)
            return False
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, encode_credential(data), mode=FILE_MODE)
    return True


def _read_current(path: Path) -> dict[str, Any]:
    """The file's JSON object; `FileNotFoundError` when it is gone, `UnreadableFile` when it is not JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    try:
        return parse_json_object(raw)
    except CredentialFileError as exc:
        raise UnreadableFile(str(exc)) from None


class CredentialStore:
    """The only writer of auth-dir files: per-file locks, read-modify-write in one step.

    `put(path, make)` reads the file under its lock, calls `make` with what is there (None when
    missing or unreadable), validates the result as a credential of a type the registry serves,
    and replaces the file atomically (0600). It returns the parsed credential of the new file.
    """

    def __init__(self, registry: ProviderRegistry = BUILTIN) -> None:
        self.registry = registry
        self._locks = KeyedLocks()

    @staticmethod
    def _key(path: Path) -> str:
        """The lock of `path`; refuses a path that could land outside its directory."""
        if ".." in path.parts:
            raise CredentialFileError(f"invalid credential file path: {path.name!r}")
        return str(path.absolute())

    def parse(self, data: Mapping[str, Any], path: Path) -> AuthFileCredential:
        """Validate `data` as the contents of `path`; raises `CredentialFileError`."""
        return credential_from_metadata(data, path=path, auth_dir=path.parent, rules=self.registry.file_rules)

    async def read(self, path: Path) -> dict[str, Any]:
        """The file as it is now; raises `FileNotFoundError` or `UnreadableFile`."""
        return await asyncio.to_thread(_read_current, path)

    async def put(self, path: Path, make: Make, *, create: bool = True) -> AuthFileCredential:
        """Write `make(current)` to `path`; without `create`, a missing file raises `FileNotFoundError`."""
        check_file_name(path.name)
        async with self._locks.hold(self._key(path)):
            return await asyncio.to_thread(self._put, path, make, create)

    async def update(self, path: Path, change: Callable[[dict[str, Any]], Mapping[str, Any]]) -> AuthFileCredential:
        """Edit an existing, readable file: `FileNotFoundError` when gone, `UnreadableFile` when broken."""
        check_file_name(path.name)
        async with self._locks.hold(self._key(path)):
            return await asyncio.to_thread(self._update, path, change)

    async def delete(self, path: Path) -> bool:
        """Remove one file; False when it was not there."""
        async with self._locks.hold(self._key(path)):
            return await asyncio.to_thread(_unlink, path)

    async def delete_all(self, auth_dir: Path) -> int:
        """Remove every `*.json` file directly in `auth_dir`; returns how many."""
        try:
            children = await asyncio.to_thread(lambda: [p for p in auth_dir.iterdir() if p.name.endswith(".json")])
        except OSError:
            return 0
        count = 0
        for child in children:
            if await asyncio.to_thread(child.is_file) and await self.delete(child):
                count += 1
        return count

    def _put(self, path: Path, make: Make, create: bool) -> AuthFileCredential:
        with directory_lock(path.parent):  # the read-modify-write of worker processes, one at a time
            return self._put_locked(path, make, create)

    def _put_locked(self, path: Path, make: Make, create: bool) -> AuthFileCredential:
        try:
            current: dict[str, Any] | None = _read_current(path)
        except FileNotFoundError:
            if not create:
                raise
            current = None
        except UnreadableFile as exc:
            log.warning("%s exists but cannot be read (%s); replacing it", path.name, exc)
            current = None
        return self._write(path, make(current))

    def _update(self, path: Path, change: Callable[[dict[str, Any]], Mapping[str, Any]]) -> AuthFileCredential:
        with directory_lock(path.parent):
            return self._write(path, change(_read_current(path)))

    def _write(self, path: Path, data: Mapping[str, Any]) -> AuthFileCredential:
        parsed = self.parse(data, path)
        write_credential_file(path, data)
        return dataclasses.replace(parsed, sha256=hashlib.sha256(encode_credential(data)).hexdigest())


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
