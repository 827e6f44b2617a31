"""Request metrics: usage records in, rows of numbers updated in batches, families folded at scrape.

`observe` is a usage subscriber and so runs once per request, on the event loop, when its record
is written. It only queues the record: the numbers are worked out in batches (every
`BATCH_RECORDS` records, and at each scrape), where the same work per record costs a fraction of
what it costs between two requests, with the interpreter's and the CPU's caches cold. Each record
picks a `Row` (one dict lookup on a tuple of fields the record already holds) and adds to a few of
its numbers; label caps, route names and the families Prometheus sees are only worked out when a
new combination of labels first appears, or at scrape time (`fold`).
"""

from __future__ import annotations

from bisect import bisect_left

from cliproxy.clientkeys import OPEN_IDENTITY, KeyTable
from cliproxy.metrics.families import DURATION_BUCKETS, TTFB_BUCKETS, Families
from cliproxy.metrics.labels import OTHER, LabelCap, key_labels, route_label
from cliproxy.usage import UsageRecord

NO_KEY = "none"  # the client_key label of a request refused before it presented a valid key
BATCH_RECORDS = 256  # records queued before their numbers are worked out
MAX_SIGNATURES = 20_000  # raw label combinations remembered; past that they are capped each time
# Positions in a row's numbers: counts, then two histograms (buckets with +Inf, then the sum), tokens, cost.
REQUESTS, COMMITTED = 0, 1
DURATION = 2
TTFB = DURATION + len(DURATION_BUCKETS) + 2
INPUT = TTFB + len(TTFB_BUCKETS) + 2
OUTPUT, CACHED, REASONING, COST = INPUT + 1, INPUT + 2, INPUT + 3, INPUT + 4
ROW_SIZE = COST + 1


class Row:
    """The numbers of one combination of labels: route, dialect, status, client key, model (capped),
    and the provider and credential that answered."""

    __slots__ = ("labels", "numbers")

    def __init__(self, labels: tuple[str, str, int, str, str, str, str]) -> None:
        self.labels = labels
        self.numbers = [0.0] * ROW_SIZE


class RequestMetrics:
    """Turns usage records (and requests refused before routing) into numbers, and numbers into families."""

    __slots__ = ("_keys", "_pending", "_rows", "_signatures", "families", "key_cap", "model_cap")

    def __init__(self, families: Families, *, label_limit: int) -> None:
        self.families = families
        self.model_cap = LabelCap(label_limit)
        self.key_cap = LabelCap(label_limit)
        self._keys: dict[str, str] = {OPEN_IDENTITY.key_id: OPEN_IDENTITY.key_id}
        self._rows: dict[tuple[str, str, int, str, str, str, str], Row] = {}  # by capped labels
        self._signatures: dict[tuple[object, ...], Row] = {}  # by the record's own fields
        self._pending: list[UsageRecord] = []

    def follow_keys(self, keys: KeyTable) -> None:
        """Learn the label of every client key of a snapshot (keys of older snapshots keep theirs)."""
        self._keys.update(key_labels(keys))

    def client_label(self, key_id: str) -> str:
        """A client key's label: its name or short hash; a key nobody configured is `other`."""
        return self.key_cap(self._keys.get(key_id, OTHER))

    def _row(self, record: UsageRecord) -> Row:
        labels = (
            route_label(record.endpoint),
            record.client_dialect,
            record.status,
            self.client_label(record.client_key),
            self.model_cap(record.alias),
            record.provider,
            record.credential_id,
        )
        row = self._rows.get(labels)
        if row is None:
            row = self._rows[labels] = Row(labels)
        return row

    def observe(self, record: UsageRecord) -> None:
        """The usage subscriber: queue the record (see the module docstring)."""
        pending = self._pending
        pending.append(record)
        if len(pending) >= BATCH_RECORDS:
            self.drain()

    def drain(self) -> None:
        """Work every queued record into its row."""
        pending, self._pending = self._pending, []
        signatures = self._signatures
        for record in pending:
            signature = (
                record.endpoint,
                record.client_dialect,
                record.status,
                record.client_key,
                record.alias,
                record.credential_id,
            )
            row = signatures.get(signature)
            if row is None:
                row = self._row(record)
                if len(signatures) < MAX_SIGNATURES:
                    signatures[signature] = row
            self._count(record, row.numbers)

    def _count(self, record: UsageRecord, numbers: list[float]) -> None:
        numbers[REQUESTS] += 1
        if record.committed:
            numbers[COMMITTED] += 1
        seconds = record.latency_ms / 1000.0
        numbers[DURATION + bisect_left(DURATION_BUCKETS, seconds)] += 1
        numbers[TTFB - 1] += seconds
        if record.ttft_ms is not None:
            seconds = record.ttft_ms / 1000.0
            numbers[TTFB + bisect_left(TTFB_BUCKETS, seconds)] += 1
            numbers[INPUT - 1] += seconds
        numbers[INPUT] += record.input_tokens
        numbers[OUTPUT] += record.output_tokens
        numbers[CACHED] += record.cached_tokens
        numbers[REASONING] += record.reasoning_tokens
        if record.cost_usd:
            numbers[COST] += record.cost_usd
        if record.failed_attempts:
            attempts = self.families.failed_attempts
            for failure in record.failed_attempts:
                attempts.add((failure.provider, failure.credential_id, failure.outcome))

    def fold(self) -> None:
        """Work the rows into the request families (at scrape time): totals by each family's labels."""
        self.drain()
        families = self.families
        requests: dict[tuple[object, ...], float] = dict(families.refused.values)
        attempts: dict[tuple[object, ...], float] = dict(families.failed_attempts.values)
        duration: dict[tuple[object, ...], list[float]] = {}
        ttfb: dict[tuple[object, ...], list[float]] = {}
        tokens: dict[tuple[object, ...], float] = {}
        cost: dict[tuple[object, ...], float] = {}
        for row in self._rows.values():
            route, dialect, status, key, model, provider, credential = row.labels
            n = row.numbers
            request: tuple[object, ...] = (route, dialect, status, key, model)
            requests[request] = requests.get(request, 0.0) + n[REQUESTS]
            _add_row(duration, (dialect, model), n[DURATION:TTFB])
            if n[TTFB : INPUT - 1] != _EMPTY_TTFB:
                _add_row(ttfb, (dialect, model), n[TTFB:INPUT])
            if n[COMMITTED]:
                attempt = (provider, credential, "ok")
                attempts[attempt] = attempts.get(attempt, 0.0) + n[COMMITTED]
            for kind, index in (("input", INPUT), ("output", OUTPUT), ("cached", CACHED), ("reasoning", REASONING)):
                if n[index]:
                    token = (key, model, kind)
                    tokens[token] = tokens.get(token, 0.0) + n[index]
            if n[COST]:
                cost[(key, model)] = cost.get((key, model), 0.0) + n[COST]
        families.requests.values = requests
        families.duration.values = duration
        families.ttfb.values = ttfb
        families.attempts.values = attempts
        families.tokens.values = tokens
        families.cost.values = cost

    def refused(self, route: str, dialect: str, status: int, key_id: str | None) -> None:
        """An API request answered before routing (a bad key, a bad body, an unknown model, a limit)."""
        key = self.client_label(key_id) if key_id is not None else NO_KEY
        self.families.refused.add((route, dialect, status, key, ""))

    def oauth_refresh(self, provider: str, outcome: str) -> None:
        self.families.oauth_refresh.add((provider, outcome))

    def config_reload(self, outcome: str) -> None:
        self.families.config_reloads.add((outcome,))


_EMPTY_TTFB = [0.0] * (len(TTFB_BUCKETS) + 1)


def _add_row(into: dict[tuple[object, ...], list[float]], labels: tuple[object, ...], row: list[float]) -> None:
    existing = into.get(labels)
    if existing is None:
        into[labels] = list(row)
    else:
        for i, value in enumerate(row):
            existing[i] += value
