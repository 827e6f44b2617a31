"""Hot reload: watch the config file and `auth-dir`, rebuild the runtime, swap it.

One path for every reload, whether a file event or a management write asked for it:
`Reloader.reload_now()` reads the config in a worker thread, skips an empty file, skips when the config
bytes and the auth-dir contents both hash the same as what was last applied, runs the full loader,
and on success builds a new `Runtime` and swaps it in (generation + 1). A bad edit keeps the running
snapshot; the error is logged (never file text, which may hold keys) and kept in
`holder.reload_status` for `GET /v0/management/reload-status`. Reloads are serialised by a lock.

File events come from watchfiles with `step=150`: a batch is yielded only after 150 ms with no
further events, which debounces the bursts an editor's save makes. Only the config file itself and direct
`*.json` children of `auth-dir` pass the filter; an atomic replace (temp file + rename) shows up
as a change of the target path. When `auth-dir` changes by reload, the watcher moves to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cliproxy.config.load import ConfigError, LoadedConfig, load_config
from cliproxy.config.model import Config
from cliproxy.credentials.store import load_auth_dir
from cliproxy.runtime import ReloadStatus, Runtime, RuntimeHolder, build_runtime, resolve_auth_dir, with_warnings

log = logging.getLogger(__name__)

DEBOUNCE_MS = 150
MISSING_DIR_POLL_MS = 1000  # how often to look for an auth-dir that does not exist yet
RESTART_FIELDS = ("host", "port", "tls", "workers", "shared_state")


def scan_auth_dir(auth_dir: Path) -> tuple[Sequence[Any], Sequence[tuple[str, str]]]:
    """The credential files of `auth-dir`, and (file, error) pairs for those that cannot be used."""
    result = load_auth_dir(auth_dir)
    return result.credentials, result.errors


def auth_fingerprint(auth_dir: Path) -> str:
    """SHA-256 over the names and bytes of the direct `*.json` children ('' when there is no dir)."""
    try:
        children = sorted(p for p in auth_dir.iterdir() if p.suffix == ".json" and p.is_file())
    except OSError:
        return ""
    digest = hashlib.sha256()
    for child in children:
        try:
            data = child.read_bytes()
        except OSError:
            continue
        digest.update(child.name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def load_runtime(path: Path, *, generation: int = 0) -> Runtime:
    """Config plus auth-dir → a `Runtime` (startup; blocking). Raises `ConfigError`."""
    return runtime_from_loaded(load_config(path), generation=generation)


def runtime_from_loaded(loaded: LoadedConfig, *, generation: int = 0) -> Runtime:
    """A loaded config plus its auth-dir → a `Runtime` (blocking)."""
    files, errors = scan_auth_dir(resolve_auth_dir(loaded.config, loaded.path))
    return build_runtime(loaded, auth_files=files, auth_errors=errors, generation=generation)


def restart_fields(listening: Config, config: Config) -> tuple[str, ...]:
    """Settings that only take effect on restart and differ from what the listener uses."""
    return tuple(name for name in RESTART_FIELDS if getattr(listening, name) != getattr(config, name))


@dataclass(frozen=True)
class _Skip:
    reason: str


def _prepare(current: Runtime, applied: _Applied, *, force: bool, generation: int) -> Runtime | _Skip:
    """Worker-thread part of a reload: read, gate, load, scan, build. Raises `ConfigError`."""
    path = current.config_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _Skip("config file is missing (mid-replace?)")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if not data.strip():
        return _Skip("config file is empty")
    same_config = hashlib.sha256(data).hexdigest() == applied.config_sha256
    if same_config and not force and auth_fingerprint(current.auth_dir) == applied.auth_fingerprint:
        return _Skip("no changes")
    loaded: LoadedConfig = load_config(path)
    auth_dir = resolve_auth_dir(loaded.config, path)
    fingerprint = auth_fingerprint(auth_dir)
    files, errors = scan_auth_dir(auth_dir)
    runtime = build_runtime(loaded, auth_files=files, auth_errors=errors, generation=generation)
    applied.auth_fingerprint = fingerprint
    return runtime


@dataclass
class _Applied:
    """What was applied last: the gate that skips reloads that would change nothing."""

    config_sha256: str = ""
    auth_fingerprint: str = ""


class Reloader:
    """Reloads for one server: on file events (`start` runs the watcher) and on request (`reload_now`)."""

    def __init__(self, holder: RuntimeHolder, *, on_outcome: Callable[[str], None] | None = None) -> None:
        self.holder = holder
        self.on_outcome = on_outcome  # `ok` or `error` after each reload that was not skipped (metrics)
        self.listening = holder.current.config  # what the listener was bound with
        self._applied = _Applied(config_sha256=holder.current.config_sha256)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def reload_now(self, *, force: bool = False) -> ReloadStatus:
        """Rescan config + auth-dir and swap the snapshot if anything changed.

        Returns the status of this attempt; attempts that changed nothing are not recorded in
        `holder.reload_status` (it keeps the last real reload or error).
        """
        holder = self.holder
        async with self._lock:
            current = holder.current
            generation = current.generation + 1
            try:
                result = await asyncio.to_thread(_prepare, current, self._applied, force=force, generation=generation)
            except ConfigError as exc:
                message = "; ".join(exc.errors)
                log.error("config reload failed, keeping the running config: %s", message)
                status = ReloadStatus(ok=False, message=message)
                holder.reload_status = status
                self._report("error")
                return status
            if isinstance(result, _Skip):
                log.debug("reload skipped: %s", result.reason)
                return ReloadStatus(
                    ok=True, message=result.reason, restart_required=holder.reload_status.restart_required
                )
            self._applied.config_sha256 = result.config_sha256
            holder.swap(result)
            restart = restart_fields(self.listening, result.config)
            message = with_warnings(f"reloaded (generation {generation})", result)
            status = ReloadStatus(ok=True, message=message, restart_required=restart)
            holder.reload_status = status
            self._report("ok")
        log.info("config %s", message)
        if restart:
            log.warning("changed %s: restart cliproxy to apply", ", ".join(restart))
        return status

    def _report(self, outcome: str) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:
                log.exception("reload outcome hook failed")

    async def start(self) -> None:
        """Record what is applied and start following file events."""
        self._applied.auth_fingerprint = await asyncio.to_thread(auth_fingerprint, self.holder.current.auth_dir)
        self._task = asyncio.create_task(self._watch(), name="cliproxy-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        """Follow file events for as long as the server runs; move with `auth-dir` when it changes."""
        from watchfiles import awatch

        holder = self.holder
        first = True
        while True:
            if not first:  # files may have appeared before the new paths were watched
                try:
                    await self.reload_now()
                except Exception:
                    log.exception("reload failed")
            first = False
            runtime = holder.current
            config_path = runtime.config_path.absolute()
            config_target = config_path.resolve()  # a symlinked config: its target's edits count too
            auth_dir = runtime.auth_dir.absolute()
            auth_exists = auth_dir.is_dir()
            paths = [config_path.parent]
            if config_target.parent != config_path.parent:
                paths.append(config_target.parent)
            if auth_exists and auth_dir not in paths:
                paths.append(auth_dir)
            config_paths = frozenset({config_path, config_target})

            def wanted(
                _change: object, raw: str, config_paths: frozenset[Path] = config_paths, auth_dir: Path = auth_dir
            ) -> bool:
                path = Path(raw)
                return path in config_paths or (path.parent == auth_dir and path.suffix == ".json")

            async for _changes in awatch(
                *paths,
                watch_filter=wanted,
                step=DEBOUNCE_MS,
                recursive=False,
                yield_on_timeout=not auth_exists,
                rust_timeout=MISSING_DIR_POLL_MS if not auth_exists else None,
                ignore_permission_denied=True,
            ):
                if _changes:
                    try:
                        await self.reload_now()
                    except Exception:  # the watcher must survive anything a reload throws
                        log.exception("reload failed")
                current = holder.current
                moved = current.auth_dir.absolute() != auth_dir or current.config_path.absolute() != config_path
                if moved or (not auth_exists and auth_dir.is_dir()):
                    break  # watch the new set of paths
            else:
                return
