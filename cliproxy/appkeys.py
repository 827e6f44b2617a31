"""Typed application state (`web.AppKey`), importable by every layer without import cycles."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from cliproxy.runtime import RuntimeHolder

if TYPE_CHECKING:
    from cliproxy.api.responses_ws import ResponsesSockets
    from cliproxy.api.ws_relay import RelaySessions
    from cliproxy.credentials.service import CredentialService
    from cliproxy.log_files import FileLogging
    from cliproxy.logs import Redactor
    from cliproxy.management.config_writer import ConfigWriter
    from cliproxy.management.guard import GuardState
    from cliproxy.management.usage_api import UsageStats
    from cliproxy.policy import PolicyState
    from cliproxy.routing.scheduler import RoutingState
    from cliproxy.upstream.base import Sessions
    from cliproxy.usage import UsageStore
    from cliproxy.usage_db import UsageDB
    from cliproxy.watch import Reloader

RUNTIME = web.AppKey("runtime", RuntimeHolder)
MGMT_GUARD: web.AppKey[GuardState] = web.AppKey("mgmt_guard")
RELOADER: web.AppKey[Reloader] = web.AppKey("reloader")
WS_SESSIONS: web.AppKey[RelaySessions] = web.AppKey("ws_sessions")
RESPONSES_SOCKETS: web.AppKey[ResponsesSockets] = web.AppKey("responses_sockets")  # open Responses WebSockets
REDACTOR: web.AppKey[Redactor] = web.AppKey("redactor")
FILE_LOGGING: web.AppKey[FileLogging] = web.AppKey("file_logging")  # the `logging-to-file` writer
REQUEST_LOG_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("request_log_tasks")  # files being written
CONFIG_WRITER: web.AppKey[ConfigWriter] = web.AppKey("config_writer")
USAGE_STATS: web.AppKey[UsageStats] = web.AppKey("usage_stats")  # management usage totals and queue
POLICY: web.AppKey[PolicyState] = web.AppKey("policy")  # per-key rate windows, in-flight counts, usage ledger
USAGE_DB: web.AppKey[UsageDB] = web.AppKey("usage_db")  # the SQLite usage file (absent when disabled)
SESSIONS: web.AppKey[Sessions] = web.AppKey("upstream_sessions")  # pooled upstream ClientSessions
ROUTING: web.AppKey[RoutingState] = web.AppKey("routing_state")  # cooldowns, cursors (survive reloads)
USAGE: web.AppKey[UsageStore] = web.AppKey("usage")  # per-request usage records
CREDENTIALS: web.AppKey[CredentialService] = web.AppKey("credentials")  # token session, refresher, logins
