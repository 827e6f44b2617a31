"""Typed application state (`web.AppKey`), importable by every layer without import cycles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from cliproxy.runtime import RuntimeHolder

if TYPE_CHECKING:
    from cliproxy.management.guard import GuardState
    from cliproxy.routing.scheduler import RoutingState
    from cliproxy.upstream.base import Sessions
    from cliproxy.usage import UsageStore

RUNTIME = web.AppKey("runtime", RuntimeHolder)
MGMT_GUARD: web.AppKey[GuardState] = web.AppKey("mgmt_guard")
SESSIONS: web.AppKey[Sessions] = web.AppKey("upstream_sessions")  # pooled upstream ClientSessions
ROUTING: web.AppKey[RoutingState] = web.AppKey("routing_state")  # cooldowns, cursors (survive reloads)
USAGE: web.AppKey[UsageStore] = web.AppKey("usage")  # per-request usage records
