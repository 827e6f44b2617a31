"""Usage over the management API: `GET /usage`, `GET /usage-queue`, `POST /reset-quota`.

`UsageStats` subscribes to the routing layer's `UsageStore` and keeps, since start:

* running totals per client key and model, and per credential (`auth_index`); the totals per key,
  per model and overall are summed from them when read, so a request adds to two counters, not five;
* per-credential success/failure counts in 20 buckets of 10 minutes (shown in `/auth-files`);
* while `usage-statistics-enabled` is on, a queue of records in CLIProxyAPI's shape
  that `GET /usage-queue?count=N` pops oldest first; records older than
  `redis-usage-queue-retention-seconds` (default 60, at most 3600) are dropped.

Records name the client key only by its redacted form or key name, never the key itself.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from cliproxy.clientkeys import redact
from cliproxy.management.guard import MGMT_ROLE, require_admin
from cliproxy.management.http import api_error, json_response, read_json
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.services import SERVICES
from cliproxy.usage import UsageRecord

routes = web.RouteTableDef()
V = TypeVar("V")

BUCKET_SECONDS = 600
BUCKETS = 20
DEFAULT_RETENTION = 60
MAX_RETENTION = 3600
MAX_QUEUE = 100_000


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Totals:
    requests: int = 0
    success: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, record: UsageRecord) -> None:
        self.requests += 1
        if record.failed:
            self.failed += 1
        else:
            self.success += 1
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.cached_tokens += record.cached_tokens
        self.reasoning_tokens += record.reasoning_tokens
        self.total_tokens += record.total_tokens or (record.input_tokens + record.output_tokens)
        if record.cost_usd:
            self.cost_usd += record.cost_usd

    def absorb(self, other: Totals) -> None:
        """Add `other`'s counts to these (summing per-model totals when a report is read)."""
        self.requests += other.requests
        self.success += other.success
        self.failed += other.failed
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.total_tokens += other.total_tokens
        self.cost_usd += other.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_requests": self.requests,
            "success_count": self.success,
            "failure_count": self.failed,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass
class CredentialCounters:
    """Success/failure per credential: totals plus 20 ten-minute buckets, newest last."""

    credential_id: str = ""
    provider: str = ""
    totals: Totals = field(default_factory=Totals)
    buckets: deque[list[int]] = field(default_factory=lambda: deque(maxlen=BUCKETS))  # [start, ok, failed]

    def add(self, record: UsageRecord) -> None:
        self.credential_id = record.credential_id
        self.provider = record.provider
        self.totals.add(record)
        start = int(record.timestamp // BUCKET_SECONDS * BUCKET_SECONDS)
        if not self.buckets or self.buckets[-1][0] != start:
            self.buckets.append([start, 0, 0])
        self.buckets[-1][2 if record.failed else 1] += 1

    def recent(self, now: float) -> list[dict[str, Any]]:
        """20 buckets ending with the current one, oldest first (empty buckets included)."""
        current = int(now // BUCKET_SECONDS * BUCKET_SECONDS)
        by_start = {b[0]: b for b in self.buckets}
        out = []
        for n in range(BUCKETS - 1, -1, -1):
            start = current - n * BUCKET_SECONDS
            bucket = by_start.get(start, [start, 0, 0])
            out.append({"time": rfc3339(start), "success": bucket[1], "failed": bucket[2]})
        return out


def queue_record(record: UsageRecord) -> dict[str, Any]:
    """A usage record in CLIProxyAPI's `usage-queue` shape."""
    tokens = {
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cached_tokens": record.cached_tokens,
        "cache_read_tokens": record.cached_tokens,
        "cache_read_tokens_present": bool(record.cached_tokens),
        "cache_creation_tokens": record.cache_creation_tokens,
        "total_tokens": record.total_tokens or (record.input_tokens + record.output_tokens),
    }
    return {
        "timestamp": rfc3339(record.timestamp),
        "latency_ms": round(record.latency_ms),
        "ttft_ms": round(record.ttft_ms) if record.ttft_ms is not None else None,
        "source": record.credential_id,
        "auth_index": record.auth_index,
        "client_ip": record.client_ip,
        "x_forwarded_for": record.x_forwarded_for,
        "user_agent": record.user_agent,
        "tokens": tokens,
        "failed": record.failed,
        "generate": True,
        "fail": {"status_code": record.status if record.failed else 200, "body": ""},
        "accounting_version": 1,
        "token_breakdown": dict(tokens),
        "provider": record.provider,
        "executor_type": record.upstream_dialect,
        "model": record.model,
        "alias": record.alias,
        "endpoint": record.endpoint,
        "auth_type": "oauth" if record.credential_id.endswith(".json") else "api_key",
        "api_key": record.client_key,
        "request_id": record.request_id,
        "reasoning_effort": record.reasoning_effort,
        "service_tier": record.service_tier,
        "stream": record.stream,
        "cost_usd": record.cost_usd,
    }


def _entry(table: dict[str, V], key: str, make: Callable[[], V]) -> V:
    value = table.get(key)
    if value is None:
        value = table[key] = make()
    return value


class UsageStats:
    """Management-side usage aggregation, fed by `UsageStore.subscribe` (see the module docstring)."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder
        self.started = time.time()
        self.by_key_model: dict[str, dict[str, Totals]] = {}
        self.by_credential: dict[str, CredentialCounters] = {}
        self.queue: deque[tuple[float, dict[str, Any]]] = deque(maxlen=MAX_QUEUE)

    def retention(self) -> float:
        extra = self._holder.current.config.model_extra or {}
        value = extra.get("redis-usage-queue-retention-seconds", DEFAULT_RETENTION)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return DEFAULT_RETENTION
        return min(value, MAX_RETENTION)

    def observe(self, record: UsageRecord) -> None:
        # Runs for every request: look up before creating (`setdefault(k, Totals())` allocates each time).
        key = record.client_key
        per_model = self.by_key_model.get(key)
        if per_model is None:
            per_model = self.by_key_model[key] = {}
        _entry(per_model, record.alias or record.model, Totals).add(record)
        if record.auth_index:
            _entry(self.by_credential, record.auth_index, CredentialCounters).add(record)
        if self._holder.current.config.usage_statistics_enabled:
            self._expire(time.monotonic())
            self.queue.append((time.monotonic(), queue_record(record)))

    def _expire(self, now: float) -> None:
        limit = now - self.retention()
        while self.queue and self.queue[0][0] < limit:
            self.queue.popleft()

    def pop(self, count: int) -> list[dict[str, Any]]:
        self._expire(time.monotonic())
        out: list[dict[str, Any]] = []
        while self.queue and len(out) < count:
            out.append(self.queue.popleft()[1])
        return out

    def credential(self, auth_index: str, now: float) -> tuple[int, int, list[dict[str, Any]]]:
        """(success, failed, recent buckets) for `/auth-files`."""
        counters = self.by_credential.get(auth_index) or CredentialCounters()
        return counters.totals.success, counters.totals.failed, counters.recent(now)

    def summary(self) -> dict[str, Any]:
        total = Totals()
        by_model: dict[str, Totals] = {}
        apis = {}
        for key, per_model in self.by_key_model.items():
            key_total = Totals()
            for model, totals in per_model.items():
                key_total.absorb(totals)
                _entry(by_model, model, Totals).absorb(totals)
            total.absorb(key_total)
            apis[key] = {**key_total.as_dict(), "models": {m: t.as_dict() for m, t in per_model.items()}}
        credentials = {
            index: {**c.totals.as_dict(), "credential_id": c.credential_id, "provider": c.provider}
            for index, c in self.by_credential.items()
        }
        return {
            "usage": {
                **total.as_dict(),
                "since": rfc3339(self.started),
                "apis": apis,
                "credentials": credentials,
                "models": {m: t.as_dict() for m, t in by_model.items()},
            }
        }


USAGE_STATS = web.AppKey("usage_stats", UsageStats)  # on the root app, read through config_dict


def _totals(figures: dict[str, float]) -> Totals:
    totals = Totals()
    for name, value in figures.items():
        if hasattr(totals, name):
            setattr(totals, name, value if name == "cost_usd" else int(value))
    return totals


async def stats_of(request: web.Request) -> UsageStats:
    """The whole cluster's totals with shared state (from Redis), else this process's own; this
    process's own too while Redis cannot be reached."""
    local = request.config_dict[USAGE_STATS]
    services = request.config_dict[SERVICES]
    shared = services.shared
    if shared is None or not shared.link.up:
        return local
    try:
        totals = await shared.usage.read()
    except shared.link.errors as exc:
        shared.link.failed(exc)
        return local
    view = UsageStats(services.holder)
    view.started = totals.since
    for key, models in totals.by_key_model.items():
        view.by_key_model[key] = {model: _totals(figures) for model, figures in models.items()}
    for auth, figures in totals.by_credential.items():
        cred_id, provider = totals.credential_info.get(auth, ("", ""))
        counters = CredentialCounters(cred_id, provider, _totals(figures))
        buckets = totals.buckets.get(auth, {})
        for start in sorted(buckets)[-BUCKETS:]:
            counters.buckets.append([start, *buckets[start]])
        view.by_credential[auth] = counters
    return view


@routes.get("/usage")
async def get_usage(request: web.Request) -> web.Response:
    return json_response((await stats_of(request)).summary())


@routes.get("/api-key-usage")
async def get_api_key_usage(request: web.Request) -> web.Response:
    """Per config API key: `{provider: {"<base_url>|<api_key>": {success, failed, recent_requests}}}`.

    The key sits in a map key, where the viewer filter cannot see it: viewers get it redacted here.
    """
    admin = request.get(MGMT_ROLE) == "admin"
    stats = await stats_of(request)
    now = time.time()
    out: dict[str, dict[str, Any]] = {}
    for cred in request.config_dict[SERVICES].holder.current.catalog.credentials:
        if not cred.api_key or cred.source is not None:
            continue
        provider = cred.provider.removeprefix("openai-compatible-")
        success, failed, recent = stats.credential(cred.auth_index, now)
        api_key = cred.api_key if admin else redact(cred.api_key)
        out.setdefault(provider, {})[f"{cred.base_url}|{api_key}"] = {
            "success": success,
            "failed": failed,
            "recent_requests": recent,
        }
    return json_response(out)


@routes.get("/usage-queue")
async def get_usage_queue(request: web.Request) -> web.Response:
    require_admin(request)  # popping consumes the records
    raw = request.query.get("count", "1").strip()
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise api_error(400, "count must be a positive integer")
    return json_response(request.config_dict[USAGE_STATS].pop(count))


@routes.post("/reset-quota")
async def reset_quota(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request)
    auth_index = body.get("auth_index") if isinstance(body, dict) else None
    if not isinstance(auth_index, str) or not auth_index.strip():
        raise api_error(400, "auth_index is required")
    auth_index = auth_index.strip()
    runtime = request.config_dict[SERVICES].holder.current
    ids = {c.id for c in runtime.catalog.credentials if c.auth_index == auth_index}
    if not ids:
        raise api_error(404, "auth not found")
    models = await request.config_dict[SERVICES].health.clear(ids)
    return json_response({"status": "ok", "auth_index": auth_index, "models": models})
