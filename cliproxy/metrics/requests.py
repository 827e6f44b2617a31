"""Request metrics: one usage record in, a handful of additions to tallies out.

`observe` is a usage subscriber and so runs once per request, on the event loop, when its record
is written. It stays cheap: label values are capped (`LabelCap`), every family is a plain dict
keyed by label values (`families.py`), and nothing is formatted until a scrape.
"""

from __future__ import annotations

from cliproxy.clientkeys import OPEN_IDENTITY, KeyTable
from cliproxy.metrics.families import Families
from cliproxy.metrics.labels import OTHER, LabelCap, key_labels, route_label
from cliproxy.usage import UsageRecord

NO_KEY = "none"  # the client_key label of a request refused before it presented a valid key


class RequestMetrics:
    """Turns usage records (and requests refused before routing) into tally additions."""

    __slots__ = ("_keys", "families", "key_cap", "model_cap")

    def __init__(self, families: Families, *, label_limit: int) -> None:
        self.families = families
        self.model_cap = LabelCap(label_limit)
        self.key_cap = LabelCap(label_limit)
        self._keys: dict[str, str] = {OPEN_IDENTITY.key_id: OPEN_IDENTITY.key_id}

    def follow_keys(self, keys: KeyTable) -> None:
        """Learn the label of every client key of a snapshot (keys of older snapshots keep theirs)."""
        self._keys.update(key_labels(keys))

    def client_label(self, key_id: str) -> str:
        """A client key's label: its name or short hash; a key nobody configured is `other`."""
        return self.key_cap(self._keys.get(key_id, OTHER))

    def observe(self, record: UsageRecord) -> None:
        families = self.families
        key = self.client_label(record.client_key)
        model = self.model_cap(record.alias)
        dialect = record.client_dialect
        requests = families.requests.values
        labels: tuple[object, ...] = (route_label(record.endpoint), dialect, record.status, key, model)
        requests[labels] = requests.get(labels, 0.0) + 1.0
        per_model = (dialect, model)
        families.duration.observe(per_model, record.latency_ms / 1000.0)
        if record.ttft_ms is not None:
            families.ttfb.observe(per_model, record.ttft_ms / 1000.0)
        attempts = families.attempts.values
        for failure in record.failed_attempts:
            labels = (failure.provider, failure.credential_id, failure.outcome)
            attempts[labels] = attempts.get(labels, 0.0) + 1.0
        if record.committed:
            labels = (record.provider, record.credential_id, "ok")
            attempts[labels] = attempts.get(labels, 0.0) + 1.0
        tokens = families.tokens.values
        for kind, count in (
            ("input", record.input_tokens),
            ("output", record.output_tokens),
            ("cached", record.cached_tokens),
            ("reasoning", record.reasoning_tokens),
        ):
            if count > 0:
                labels = (key, model, kind)
                tokens[labels] = tokens.get(labels, 0.0) + count
        if record.cost_usd:
            families.cost.add((key, model), record.cost_usd)

    def refused(self, route: str, dialect: str, status: int, key_id: str | None) -> None:
        """An API request answered before routing (a bad key, a bad body, an unknown model, a limit)."""
        key = self.client_label(key_id) if key_id is not None else NO_KEY
        self.families.requests.add((route, dialect, status, key, ""))

    def oauth_refresh(self, provider: str, outcome: str) -> None:
        self.families.oauth_refresh.add((provider, outcome))

    def config_reload(self, outcome: str) -> None:
        self.families.config_reloads.add((outcome,))
