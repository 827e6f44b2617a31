"""Runtime snapshots: everything a request needs, built once per config/auth-dir version.

Handlers read `holder.current` once per request; a reload builds a new `Runtime` and swaps one
reference, so in-flight requests finish on the snapshot they started with. Mutable routing state
(cooldowns, cursors, counters) lives outside the snapshot, keyed by stable credential ids.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cliproxy.clientkeys import KeyTable, build_key_table
from cliproxy.config.load import LoadedConfig, management_password_from_env
from cliproxy.config.model import Config
from cliproxy.routing.catalog import Catalog, build_catalog
from cliproxy.routing.credentials import Credential, resolve_timeouts
from cliproxy.translate.payload import PayloadRules
from cliproxy.upstream.http1 import Timeouts

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ManagementAccess:
    """Who may use `/v0/management` under this snapshot."""

    secret_hash: str
    env_password: str
    allow_remote: bool
    viewer_hashes: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.secret_hash or self.env_password)


@dataclass(frozen=True)
class Runtime:
    config: Config
    config_path: Path
    keys: KeyTable
    management: ManagementAccess
    trusted_proxies: tuple[Network, ...]
    catalog: Catalog
    auth_dir: Path
    auth_files: tuple[Any, ...] = ()
    auth_errors: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    config_sha256: str = ""
    compat_only: tuple[str, ...] = ()  # keys set that have no effect in cliproxy
    generation: int = 0

    @cached_property
    def safe_mode(self) -> bool:
        """Computed once per snapshot: the front door asks on every request."""
        return self.config.uses_template_keys

    @cached_property
    def upstream_timeouts(self) -> Timeouts:
        """The top-level `upstream-timeouts` (for credentials without their own)."""
        return resolve_timeouts(self.config)

    def with_runtime_credentials(self, credentials: Sequence[Credential]) -> Runtime:
        """This snapshot with `credentials` as its runtime-only credentials (the previous ones replaced)."""
        return dataclasses.replace(self, catalog=self.catalog.with_runtime(credentials))

    @cached_property
    def payload_rules(self) -> PayloadRules:
        """The `payload:` rules, compiled once per snapshot (invalid rules are logged and ignored)."""
        try:
            return PayloadRules.from_config(self.config.payload)
        except ValueError as exc:
            log.error("payload rules ignored: %s", exc)
            return PayloadRules()


def resolve_auth_dir(config: Config, config_path: Path) -> Path:
    """`~` expands to home; a relative auth-dir is relative to the config file's directory."""
    raw = Path(config.auth_dir).expanduser()
    return raw if raw.is_absolute() else (config_path.parent / raw).resolve()


def build_runtime(
    loaded: LoadedConfig,
    *,
    auth_files: Sequence[Any] = (),
    auth_errors: Sequence[tuple[str, str]] = (),
    generation: int = 0,
) -> Runtime:
    config = loaded.config
    env_password = management_password_from_env()
    rm = config.remote_management
    management = ManagementAccess(
        secret_hash=rm.secret_key,
        env_password=env_password,
        allow_remote=rm.allow_remote or bool(env_password),
        viewer_hashes=rm.viewer_keys,
    )
    return Runtime(
        config=config,
        config_path=loaded.path,
        keys=build_key_table(config.api_keys),
        management=management,
        trusted_proxies=tuple(ipaddress.ip_network(c, strict=False) for c in config.trusted_proxies),
        catalog=build_catalog(config, auth_files),
        auth_dir=resolve_auth_dir(config, loaded.path),
        auth_files=tuple(auth_files),
        auth_errors=tuple(auth_errors),
        warnings=loaded.warnings,
        compat_only=loaded.compat_only,
        config_sha256=loaded.sha256,
        generation=generation,
    )


@dataclass
class ReloadStatus:
    """The last reload attempt, shown at `GET /v0/management/reload-status`."""

    time: float = field(default_factory=time.time)
    ok: bool = True
    message: str = "initial load"
    restart_required: tuple[str, ...] = ()


def with_warnings(message: str, runtime: Runtime) -> str:
    """A reload-status message with the config's warnings: unknown keys, and keys set that have no
    effect in cliproxy."""
    warned = (*runtime.warnings, *runtime.compat_only)
    return f"{message}; {len(warned)} warning(s): " + "; ".join(warned) if warned else message


SwapListener = Callable[[Runtime, Runtime], None]
RuntimeCredential = Callable[[Config], Credential]  # builds a connection's credential under a config


class RuntimeHolder:
    """The one mutable reference to the current snapshot.

    `listeners` are called with `(old, new)` after every swap, whoever swaps (watcher or a
    management write), so derived state (the log redaction set, open `/v1/ws` sessions) can never
    miss a change. They must be quick and must not raise.

    Runtime-only credentials (a connected AI Studio relay) are not in any file: the holder keeps
    how to build each and lays them over every snapshot it swaps in, so a reload keeps them and
    adding or removing one is a swap like any other.
    """

    __slots__ = ("_runtime_credentials", "current", "listeners", "reload_status")

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime
        self.reload_status = ReloadStatus(message=with_warnings("initial load", runtime))
        self.listeners: list[SwapListener] = []
        self._runtime_credentials: dict[str, RuntimeCredential] = {}

    def add_runtime_credential(self, key: str, build: RuntimeCredential) -> None:
        """Serve a credential that lives as long as its connection (`key` names it for removal)."""
        self._runtime_credentials[key] = build
        self.swap(self.current)

    def remove_runtime_credential(self, key: str) -> None:
        if self._runtime_credentials.pop(key, None) is not None:
            self.swap(self.current)

    def swap(self, runtime: Runtime) -> Runtime:
        if self._runtime_credentials or runtime.catalog.runtime:
            config = runtime.config
            runtime = runtime.with_runtime_credentials([build(config) for build in self._runtime_credentials.values()])
        old, self.current = self.current, runtime
        for listener in self.listeners:
            try:
                listener(old, runtime)
            except Exception:
                log.exception("runtime swap listener %r failed", listener)
        return old
