"""`GET /usage/history`: requests, tokens, cost, errors and failovers over time, per client key and model.

The web panel's overview charts read it. The figures come from the usage database (`usage-db`),
so they cover restarts and go back as far as it keeps rows (90 days). Query:

* `bucket=hour` (default; `count` buckets back from the current one, default 24, at most 336) or
  `bucket=day` (default 30, at most 90);
* `tz=<minutes east of UTC>` so that day buckets start at the viewer's midnight.

Answer: `{"enabled", "bucket", "bucket_seconds", "start", "end", "rows": [{"time", "client_key",
"model", "requests", "failed", "failovers", "tokens", "cost_usd"}]}` with times in unix seconds
(bucket starts); buckets without requests have no rows. "failovers" counts requests that needed
more than one attempt. With `usage-db: off` the answer has `"enabled": false` and no rows.

The query runs on the database's own thread and identical queries within `CACHE_SECONDS` share
one answer, so any number of open panels cost at most one query per interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cliproxy.management.http import api_error, json_response
from cliproxy.server.services import SERVICES
from cliproxy.usage_db import UsageDB

routes = web.RouteTableDef()

# bucket name → (seconds, default count, most buckets one answer may cover)
BUCKETS: dict[str, tuple[int, int, int]] = {"hour": (3600, 24, 14 * 24), "day": (86400, 30, 90)}
MAX_TZ_MINUTES = 14 * 60
CACHE_SECONDS = 5.0
CACHE_ENTRIES = 16


@dataclass
class HistoryCache:
    """Recent answers by query, so that polling panels share one database query."""

    answers: dict[tuple[str, int, int], tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def get(self, query: tuple[str, int, int], now: float) -> dict[str, Any] | None:
        hit = self.answers.get(query)
        return hit[1] if hit is not None and now - hit[0] < CACHE_SECONDS else None

    def put(self, query: tuple[str, int, int], now: float, answer: dict[str, Any]) -> None:
        if len(self.answers) >= CACHE_ENTRIES:
            self.answers.clear()
        self.answers[query] = (now, answer)


HISTORY_CACHE = web.AppKey("usage_history_cache", HistoryCache)  # on the management sub-app


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise api_error(400, f"invalid {name}") from None
    if not low <= value <= high:
        raise api_error(400, f"{name} must be between {low} and {high}")
    return value


async def history(db: UsageDB, bucket: str, count: int, offset: int, now: float) -> dict[str, Any]:
    """The answer for `count` buckets of `bucket` ending with the one `now` is in."""
    seconds = BUCKETS[bucket][0]
    current = (int(now) + offset) // seconds * seconds - offset
    start = current - (count - 1) * seconds
    rows = await db.history(start, seconds, offset)
    return {
        "enabled": True,
        "bucket": bucket,
        "bucket_seconds": seconds,
        "start": start,
        "end": current + seconds,
        "rows": [
            {
                "time": when,
                "client_key": key,
                "model": model,
                "requests": requests,
                "failed": failed,
                "failovers": failovers,
                "tokens": tokens,
                "cost_usd": round(cost, 6),
            }
            for when, key, model, requests, failed, failovers, tokens, cost in rows
        ],
    }


@routes.get("/usage/history")
async def get_usage_history(request: web.Request) -> web.Response:
    bucket = request.query.get("bucket", "hour").strip() or "hour"
    if bucket not in BUCKETS:
        raise api_error(400, "bucket must be hour or day")
    _, default, most = BUCKETS[bucket]
    count = _int_query(request, "count", default, 1, most)
    offset = _int_query(request, "tz", 0, -MAX_TZ_MINUTES, MAX_TZ_MINUTES) * 60
    db = request.config_dict[SERVICES].usage_db
    if db is None:
        return json_response({"enabled": False, "bucket": bucket, "rows": []})
    cache = request.config_dict[HISTORY_CACHE]
    query, now = (bucket, count, offset), time.time()
    answer = cache.get(query, now)
    if answer is None:
        answer = await history(db, bucket, count, offset, now)
        cache.put(query, now, answer)
    return json_response(answer)
