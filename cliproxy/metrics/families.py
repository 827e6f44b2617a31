"""The metric families cliproxy exports (names and labels are part of its interface), kept as tallies.

A tally is plain numbers in a dict keyed by label values, with the event loop as its only writer:
adding to one costs a dict lookup and an addition, where a `prometheus_client` counter takes a lock
and a few method calls per increment (about ten per request cost ~5 % of a passthrough). The
request families are not even added to per request: `requests.py` keeps one row of numbers per
label combination and folds the rows into them at scrape time. `TallyCollector` turns the tallies
into metric families when `/metrics` is scraped.

Several processes fit this shape: each keeps its own rows and tallies and publishes their values to
the shared store, and a scrape sums what every process published (label values → numbers merge by
addition, histogram rows bucket by bucket; `Metrics.render_sum`). Nothing that counts a request has
to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Seconds. An LLM request takes from tens of milliseconds (a cached count) to minutes (a long stream).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[object, ...]  # label values in the family's label order (str() at scrape time)


class CounterTally:
    """A labelled counter: label values → total so far."""

    __slots__ = ("doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name = name  # without `_total`: the exposition adds it
        self.doc = doc
        self.labels = labels
        self.values: dict[Labels, float] = {}

    def add(self, labels: Labels, amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, total in self.values.items():
            family.add_metric([str(v) for v in labels], total)
        return family


class HistogramTally:
    """A labelled histogram: label values → a row of per-bucket counts (the last one +Inf), then the sum."""

    __slots__ = ("bounds", "doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self.name = name
        self.doc = doc
        self.labels = labels
        self.bounds = bounds
        self.values: dict[Labels, list[float]] = {}

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        edges = [*(repr(float(b)) for b in self.bounds), "+Inf"]  # `0.05`, `1.0`: as prometheus_client writes them
        for labels, row in self.values.items():
            cumulative, buckets = 0.0, []
            for edge, count in zip(edges, row, strict=False):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric([str(v) for v in labels], buckets, sum_value=row[-1])
        return family


@dataclass(frozen=True, slots=True)
class Families:
    """Every counter and histogram; label names in the order their label tuples hold the values.

    The request families are worked out from the request rows at scrape time (`fold`); `refused` and
    `failed_attempts` are added to as things happen and folded into `requests` and `attempts`.
    """

    requests: CounterTally
    duration: HistogramTally
    ttfb: HistogramTally
    attempts: CounterTally
    tokens: CounterTally
    cost: CounterTally
    oauth_refresh: CounterTally
    config_reloads: CounterTally
    refused: CounterTally  # requests answered before routing (not exposed by itself)
    failed_attempts: CounterTally  # attempts that did not commit an answer (not exposed by itself)

    def exposed(self) -> tuple[CounterTally | HistogramTally, ...]:
        return (
            self.requests,
            self.duration,
            self.ttfb,
            self.attempts,
            self.tokens,
            self.cost,
            self.oauth_refresh,
            self.config_reloads,
        )


REQUEST_LABELS = ("route", "dialect", "status", "client_key", "model")
ATTEMPT_LABELS = ("provider", "credential", "outcome")


def build_families() -> Families:
    return Families(
        requests=CounterTally(
            "cliproxy_requests",
            "API requests by route, client dialect, HTTP status, client key and the model asked for.",
            REQUEST_LABELS,
        ),
        duration=HistogramTally(
            "cliproxy_request_duration_seconds",
            "Time from routing a request to its last byte (streams included).",
            ("dialect", "model"),
            DURATION_BUCKETS,
        ),
        ttfb=HistogramTally(
            "cliproxy_time_to_first_byte_seconds",
            "Time from routing a request to the upstream's first answer byte it committed to.",
            ("dialect", "model"),
            TTFB_BUCKETS,
        ),
        attempts=CounterTally(
            "cliproxy_upstream_attempts",
            "Upstream attempts by provider, credential id and outcome (ok, failover, cooldown, timeout, error).",
            ATTEMPT_LABELS,
        ),
        tokens=CounterTally(
            "cliproxy_tokens",
            "Tokens the upstreams reported, by client key, model and kind (input, output, cached, reasoning).",
            ("client_key", "model", "kind"),
        ),
        cost=CounterTally(
            "cliproxy_cost_usd",
            "Cost in USD at litellm's list prices (requests of models without a known price add nothing).",
            ("client_key", "model"),
        ),
        oauth_refresh=CounterTally(
            "cliproxy_oauth_refresh",
            "OAuth token refreshes by provider and outcome (ok, error, rejected: the refresh token is dead).",
            ("provider", "outcome"),
        ),
        config_reloads=CounterTally(
            "cliproxy_config_reloads",
            "Config and auth-dir reloads that changed something (ok) or were refused (error).",
            ("outcome",),
        ),
        refused=CounterTally("cliproxy_refused_requests", "", REQUEST_LABELS),
        failed_attempts=CounterTally("cliproxy_failed_attempts", "", ATTEMPT_LABELS),
    )


class TallyCollector(Collector):
    """Exposes the tallies at scrape time, after `fold` has brought the request families up to date
    (on the event loop, their only writer: no lock needed)."""

    def __init__(self, families: Families, fold: Callable[[], None]) -> None:
        self.families = families
        self.fold = fold

    def collect(self) -> Iterator[Metric]:
        self.fold()
        for tally in self.families.exposed():
            yield tally.family()
