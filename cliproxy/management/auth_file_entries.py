"""The entries of `GET /auth-files`: one per credential file, with CLIProxyAPI's fields.

Besides what the file says, an entry shows what the running proxy knows: request counters from
the usage store, the end of the latest cooldown, the refresh bookkeeping, and the provider's own
extra fields (its registry entry's `listing`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from cliproxy.credentials.files import AuthFileCredential
from cliproxy.credentials.service import CredentialService
from cliproxy.management.usage_api import USAGE_STATS, UsageStats
from cliproxy.runtime import Runtime
from cliproxy.server.services import SERVICES


def _rfc3339(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stat_all(paths: Iterable[Path]) -> dict[Path, os.stat_result]:
    out: dict[Path, os.stat_result] = {}
    for path in paths:
        try:
            out[path] = path.stat()
        except OSError:
            continue
    return out


@dataclass(frozen=True)
class Live:
    """Per-credential runtime facts for the listing: request counters and cooldowns."""

    stats: UsageStats | None
    cooldown_until: dict[str, float]  # auth_index -> wall-clock end of its latest cooldown
    now: float


def live_facts(request: web.Request, runtime: Runtime) -> Live:
    now = time.time()
    until: dict[str, float] = {}
    index_of = {c.id: c.auth_index for c in runtime.catalog.credentials}
    for cooldown in request.config_dict[SERVICES].health.snapshot():
        auth_index = index_of.get(cooldown.credential_id)
        if auth_index and cooldown.seconds > 0:
            until[auth_index] = max(until.get(auth_index, 0.0), now + cooldown.seconds)
    return Live(request.config_dict.get(USAGE_STATS), until, now)


def file_entry(
    cred: AuthFileCredential, st: os.stat_result | None, live: Live, service: CredentialService
) -> dict[str, Any]:
    """One `/auth-files` list entry for a loaded credential file."""
    kind = service.registry.auth_file(cred.type)
    modtime = _rfc3339(st.st_mtime) if st else None
    success, failed, recent = live.stats.credential(cred.auth_index, live.now) if live.stats is not None else (0, 0, [])
    retry_after = live.cooldown_until.get(cred.auth_index)
    entry: dict[str, Any] = {
        "id": cred.id,
        "auth_index": cred.auth_index,
        "name": cred.name,
        "type": cred.type,
        "provider": cred.provider,
        "label": cred.label,
        "status": "disabled" if cred.disabled else "active",
        "status_message": "disabled via management API" if cred.disabled else "",
        "disabled": cred.disabled,
        "unavailable": retry_after is not None,
        "runtime_only": False,
        "source": "file",
        "size": st.st_size if st else 0,
        "success": success,
        "failed": failed,
        "recent_requests": recent,
        "email": cred.email,
        "project_id": cred.project_id,
        "account_type": kind.account_type if kind is not None else "oauth",
        "account": cred.email,
        "created_at": modtime,
        "modtime": modtime,
        "updated_at": modtime,
        "last_refresh": _rfc3339(cred.last_refresh),
        "expired": _rfc3339(cred.expires_at),
        "next_retry_after": _rfc3339(retry_after),
        "path": str(cred.path),
        "priority": cred.priority,
        "note": cred.note,
        "weight": cred.weight,
        "websockets": cred.websockets,
        "request_retry": cred.request_retry,
        "prefix": cred.prefix,
    }
    if kind is not None:
        entry.update(kind.listing(cred))
    return {**entry, **service.refresh_view(cred)}


def broken_entry(runtime: Runtime, name: str, error: str, st: os.stat_result | None) -> dict[str, Any]:
    """A file in auth-dir that could not be loaded: listed so the UI can show why."""
    path = runtime.auth_dir / name
    modtime = _rfc3339(st.st_mtime) if st else None
    return {
        "id": name,
        "auth_index": "",
        "name": name,
        "type": "",
        "provider": "",
        "label": name,
        "status": "error",
        "status_message": error,
        "disabled": False,
        "unavailable": True,
        "runtime_only": False,
        "source": "file",
        "size": st.st_size if st else 0,
        "success": 0,
        "failed": 0,
        "modtime": modtime,
        "updated_at": modtime,
        "path": str(path),
    }
