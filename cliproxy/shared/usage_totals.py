"""The management usage totals of a whole cluster, kept in Redis so every process answers the same.

Each process still keeps its own `UsageStats` (and its own SQLite records); with shared state it
also adds every finished request to cluster-wide hashes, through the write-behind queue that already
carries the request's usage add, so a request is counted exactly once wherever it ran:

- `stats:key-model`: `<client key id> US <model> US <figure>` → count (cost as a float);
- `stats:credential`: `<auth index> US <figure>` → count, and `stats:credential-info`: who it is;
- `stats:buckets:<auth index>`: `<bucket start>:success|failed` → count, kept a day;
- `stats:since`: when the first process of the cluster started counting.

`read` returns them in two round trips, for `GET /v0/management/usage` and `/api-key-usage`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cliproxy.shared.connection import RedisLink
from cliproxy.shared.writes import WriteBehind
from cliproxy.usage import UsageRecord

SEP = "\x1f"
FIGURES = (
    "requests",
    "success",
    "failed",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
)
BUCKET_SECONDS = 600  # the management API's ten-minute buckets
BUCKETS_TTL_SECONDS = 86_400


@dataclass
class ClusterTotals:
    since: float
    by_key_model: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    by_credential: dict[str, dict[str, float]] = field(default_factory=dict)
    credential_info: dict[str, tuple[str, str]] = field(default_factory=dict)  # auth index → (id, provider)
    buckets: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # auth index → start → [ok, failed]


def figures(record: UsageRecord) -> tuple[float, ...]:
    total = record.total_tokens or (record.input_tokens + record.output_tokens)
    failed = 1 if record.failed else 0
    return (
        1,
        1 - failed,
        failed,
        record.input_tokens,
        record.output_tokens,
        record.cached_tokens,
        record.reasoning_tokens,
        total,
        record.cost_usd or 0.0,
    )


class ClusterUsage:
    def __init__(self, link: RedisLink, writes: WriteBehind) -> None:
        self.link = link
        self.writes = writes
        self.key_model = link.key("stats", "key-model")
        self.credential = link.key("stats", "credential")
        self.info = link.key("stats", "credential-info")
        self.since = link.key("stats", "since")
        self._known: set[str] = set()  # credentials whose identity this process wrote already
        self._who: dict[str, str] = {}  # auth index → "<credential id> US <provider>"
        self._rows: dict[tuple[str, str, str, float], list[float]] = {}  # summed since the last flush
        writes.before_flush(self._drain)
        link.on_up(self._forget)

    async def _forget(self) -> None:
        """Redis may have come back empty: write every credential's identity again."""
        self._known.clear()

    def _buckets(self, auth_index: str) -> str:
        return self.link.key("stats", "buckets", auth_index)

    async def start(self) -> None:
        """Mark when the cluster started counting (the first process to get here wins)."""
        started = repr(time.time())
        self.writes.add("SET", self.since, started, "NX")

    def observe(self, record: UsageRecord) -> None:
        """Sum the request into its (key, model, credential) row; `_drain` turns the rows into counter
        writes when the write-behind queue flushes, so a request costs a few additions here."""
        slot = (record.client_key, record.alias or record.model, record.auth_index, record.timestamp // BUCKET_SECONDS)
        row = self._rows.get(slot)
        if row is None:
            row = self._rows[slot] = [0.0] * len(FIGURES)
            self._who.setdefault(record.auth_index, record.credential_id + SEP + record.provider)
            self.writes.touch()
        for index, value in enumerate(figures(record)):
            row[index] += value

    def _drain(self) -> None:
        rows, self._rows = self._rows, {}
        writes = self.writes
        for (key, model, auth, bucket), row in rows.items():
            key_model = key + SEP + model + SEP
            for name, value in zip(FIGURES, row, strict=True):
                if not value:
                    continue
                if name == "cost_usd":
                    writes.incr_float(self.key_model, key_model + name, value)
                    if auth:
                        writes.incr_float(self.credential, auth + SEP + name, value)
                else:
                    writes.incr(self.key_model, key_model + name, int(value))
                    if auth:
                        writes.incr(self.credential, auth + SEP + name, int(value))
            if auth:
                if auth not in self._known:
                    self._known.add(auth)
                    writes.add("HSET", self.info, auth, self._who.get(auth, SEP))
                buckets, start = self._buckets(auth), int(bucket * BUCKET_SECONDS)
                if row[1]:
                    writes.incr(buckets, f"{start}:success", int(row[1]))
                if row[2]:
                    writes.incr(buckets, f"{start}:failed", int(row[2]))
                writes.expire(buckets, BUCKETS_TTL_SECONDS)

    async def read(self) -> ClusterTotals:
        """Everything counted so far; raises the link's errors (the caller falls back to this process)."""
        client = self.link.client
        pipe = client.pipeline(transaction=False)
        pipe.get(self.since)
        pipe.hgetall(self.key_model)
        pipe.hgetall(self.credential)
        pipe.hgetall(self.info)
        since, key_model, credential, info = await pipe.execute()
        out = ClusterTotals(since=float(since) if since else time.time())
        for name, value in key_model.items():
            key, model, figure = _key_model_figure(name.decode())
            out.by_key_model.setdefault(key, {}).setdefault(model, {})[figure] = float(value)
        for name, value in credential.items():
            auth, _, figure = name.decode().rpartition(SEP)
            out.by_credential.setdefault(auth, {})[figure] = float(value)
        for auth_raw, who in info.items():
            cred_id, _, provider = who.decode().partition(SEP)
            out.credential_info[auth_raw.decode()] = (cred_id, provider)
        indexes = list(out.credential_info)
        if indexes:
            pipe = client.pipeline(transaction=False)
            for auth in indexes:
                pipe.hgetall(self._buckets(auth))
            for auth, counts in zip(indexes, await pipe.execute(), strict=True):
                table = out.buckets.setdefault(auth, {})
                for name, value in counts.items():
                    start, _, outcome = name.decode().partition(":")
                    table.setdefault(int(start), [0, 0])[0 if outcome == "success" else 1] += int(value)
        return out


def _key_model_figure(name: str) -> tuple[str, str, str]:
    """Split a `stats:key-model` field. The figure is one of `FIGURES` and the key id comes from the
    operator's config, but the model is the client's own string (a thinking suffix can hold any byte),
    so the model is everything between the first and the last separator: one odd name sent by one
    client must not make the whole hash, and so every process's usage answer, unreadable."""
    key, _, rest = name.partition(SEP)
    model, _, figure = rest.rpartition(SEP)
    return key, model, figure
