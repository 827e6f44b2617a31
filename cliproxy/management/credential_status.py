"""`GET /credential-status`: every upstream credential of the running snapshot with its cooldowns.

With `routing.session-affinity`, the live bindings (the session as a short digest, the model route,
the credential) and each credential's count of bound sessions are there too.
`cliproxy auth status --url` joins this with what it reads locally (config and auth-dir), since
only the running proxy knows which (credential, model) pairs are cooling down and until when.
Credentials are named the way the CLI names them: the config path (`claude-api-key[0]`,
`openai-compatibility[0].api-key-entries[1]`) or the auth file's name. No secret is included:
a config key is shown as its redacted hint (`sk-…abcd`).

The web panel's credentials page polls it every few seconds, so it also carries what that page
shows per credential: whether it is switched off (an API-key entry is switched off by excluding
`*`), how many models it serves, request counters since start, and for auth files the expiry
and the refresh bookkeeping. Everything is read from memory; nothing touches the disk.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cliproxy.clientkeys import redact
from cliproxy.credentials.files import format_time
from cliproxy.credentials.service import CredentialService
from cliproxy.management.http import json_response
from cliproxy.management.usage_api import USAGE_STATS, stats_of
from cliproxy.routing.credentials import Credential, auth_index
from cliproxy.runtime import Runtime
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def switched_off(runtime: Runtime, service: CredentialService) -> set[str]:
    """`auth_index`es of config entries the management API switched off by excluding every model.

    Read from the config entries themselves (not `KeySection.entries`, which logs the entries it
    drops: this runs on every poll of the panel)."""
    off: set[str] = set()
    for section in service.registry.key_sections:
        if section.status_toggle != "excluded-models":
            continue
        for entry in runtime.config.api_key_section(section.section):
            if "*" in entry.excluded_models:
                off.add(auth_index(f"{section.section}:{entry.base_url}+{entry.api_key}"))
    return off


def _file_facts(cred: Credential, service: CredentialService) -> dict[str, Any]:
    """Expiry and refresh bookkeeping of an auth-file credential (the newest token's, after a refresh)."""
    source = cred.source
    if source is None:
        return {"kind": "api-key", "key_hint": redact(cred.api_key) if cred.api_key else ""}
    current = service.current(source)
    kind = service.registry.auth_file(source.type)
    view = service.refresh_view(current)
    refresh = view.get("refresh") or {}
    return {
        "kind": "auth-file",
        "type": source.type,
        "email": source.email,
        "expires": format_time(current.expires_at) if current.expires_at else None,
        "last_refresh": view.get("last_refresh")
        or (format_time(current.last_refresh) if current.last_refresh else None),
        "refresh_error": refresh.get("last_error"),
        "refreshable": kind is not None and (kind.refresh is not None or kind.mint is not None),
    }


@routes.get("/credential-status")
async def get_credential_status(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    runtime = services.holder.current
    bindings = services.affinity.snapshot()
    bound: dict[str, int] = {}
    for binding in bindings:
        bound[binding.credential_id] = bound.get(binding.credential_id, 0) + 1
    now = time.time()
    cooling: dict[str, list[dict[str, Any]]] = {}
    for cooldown in services.health.snapshot():
        if cooldown.seconds <= 0:
            continue
        cooling.setdefault(cooldown.credential_id, []).append(
            {
                "model": cooldown.model,
                "until": _rfc3339(now + cooldown.seconds),
                "seconds": round(cooldown.seconds, 1),
                "reason": cooldown.reason,
                "status": cooldown.status,
            }
        )
    off = switched_off(runtime, services.credentials)
    stats = request.config_dict.get(USAGE_STATS)
    if stats is not None:  # with shared state: the whole cluster's counts
        stats = await stats_of(request)
    items = []
    for cred in runtime.catalog.credentials:
        success, failed, _ = stats.credential(cred.auth_index, now) if stats is not None else (0, 0, [])
        excluded = cred.source is None and cred.auth_index in off
        items.append(
            {
                "name": cred.name,
                "id": cred.id,
                "auth_index": cred.auth_index,
                "provider": cred.provider,
                "disabled": cred.disabled or excluded,
                "cooldowns": sorted(cooling.get(cred.id, []), key=lambda c: str(c["model"])),
                "label": cred.label,
                "base_url": cred.base_url,
                "prefix": cred.prefix,
                "priority": cred.priority,
                "models": len(cred.models),
                "success": success,
                "failed": failed,
                "sessions": bound.get(cred.id, 0),  # sessions bound to it (`routing.session-affinity`)
                **_file_facts(cred, services.credentials),
            }
        )
    routing = runtime.config.routing
    affinity = {
        "enabled": routing.session_affinity,
        "ttl": routing.session_affinity_ttl,
        "bindings": [
            {"session": b.session, "model": b.model, "credential": b.credential_id, "seconds_left": b.seconds_left}
            for b in bindings
        ],
    }
    return json_response({"credentials": items, "session_affinity": affinity, "time": _rfc3339(now)})
