"""Request metrics: one usage record in, a handful of counter increments out.

`observe` is a usage subscriber and so runs once per request, on the event loop, when its record
is written. It stays cheap: label values are capped (`LabelCap`) and the labelled children of each
family are cached by their label tuple, so a request costs a few dict lookups and the increments
themselves (`prometheus_client` takes one lock per increment), never a `labels()` call after the
first request of a kind.
"""

from __future__ import annotations

from typing import Any

from cliproxy.clientkeys import OPEN_IDENTITY, KeyTable
from cliproxy.metrics.families import TOKEN_KINDS, Families
from cliproxy.metrics.labels import OTHER, LabelCap, key_labels, route_label
from cliproxy.usage import UsageRecord


class ChildCache:
    """The labelled children of one family by their label values (`labels()` is the slow part)."""

    __slots__ = ("children", "family")

    def __init__(self, family: Any) -> None:
        self.family = family
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.family.labels(*values)
        return child


class RequestMetrics:
    """Turns usage records (and requests refused before routing) into counter increments."""

    __slots__ = (
        "_attempts",
        "_cost",
        "_duration",
        "_keys",
        "_requests",
        "_tokens",
        "_ttfb",
        "families",
        "key_cap",
        "model_cap",
    )

    def __init__(self, families: Families, *, label_limit: int) -> None:
        self.families = families
        self.model_cap = LabelCap(label_limit)
        self.key_cap = LabelCap(label_limit)
        self._keys: dict[str, str] = {OPEN_IDENTITY.key_id: OPEN_IDENTITY.key_id}
        self._requests = ChildCache(families.requests)
        self._duration = ChildCache(families.duration)
        self._ttfb = ChildCache(families.ttfb)
        self._attempts = ChildCache(families.attempts)
        self._tokens: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._cost = ChildCache(families.cost)

    def follow_keys(self, keys: KeyTable) -> None:
        """Learn the label of every client key of a snapshot (keys of older snapshots keep theirs)."""
        self._keys.update(key_labels(keys))

    def client_label(self, key_id: str) -> str:
        """A client key's label: its name or short hash; a key nobody configured is `other`."""
        return self.key_cap(self._keys.get(key_id, OTHER))

    def observe(self, record: UsageRecord) -> None:
        key = self.client_label(record.client_key)
        model = self.model_cap(record.alias)
        dialect = record.client_dialect
        self._requests(route_label(record.endpoint), dialect, str(record.status), key, model).inc()
        self._duration(dialect, model).observe(record.latency_ms / 1000.0)
        if record.ttft_ms is not None:
            self._ttfb(dialect, model).observe(record.ttft_ms / 1000.0)
        for failure in record.failed_attempts:
            self._attempts(failure.provider, failure.credential_id, failure.outcome).inc()
        if record.committed:
            self._attempts(record.provider, record.credential_id, "ok").inc()
        counts = (record.input_tokens, record.output_tokens, record.cached_tokens, record.reasoning_tokens)
        if any(counts):
            children = self._tokens.get((key, model))
            if children is None:
                tokens = self.families.tokens
                children = self._tokens[(key, model)] = tuple(tokens.labels(key, model, kind) for kind in TOKEN_KINDS)
            for child, count in zip(children, counts, strict=True):
                if count > 0:
                    child.inc(count)
        if record.cost_usd:
            self._cost(key, model).inc(record.cost_usd)

    def refused(self, route: str, dialect: str, status: int, key_id: str | None) -> None:
        """An API request answered before routing (a bad key, a bad body, an unknown model, a limit)."""
        key = self.client_label(key_id) if key_id is not None else "none"
        self._requests(route, dialect, str(status), key, "").inc()

    def oauth_refresh(self, provider: str, outcome: str) -> None:
        self.families.oauth_refresh.labels(provider, outcome).inc()

    def config_reload(self, outcome: str) -> None:
        self.families.config_reloads.labels(outcome).inc()
