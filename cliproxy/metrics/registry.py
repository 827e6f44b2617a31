"""The metrics of one server: its registry, the request metrics, and the text of one scrape.

Built once by the composition root. It follows runtime swaps (`on_swap`) for `metrics.enabled`,
`metrics.max-label-values` and the client keys' labels; while disabled, usage records are not
counted at all and `/metrics` answers 404.

Several processes (worker processes on one port, or instances under shared state, which workers
require) answer a scrape for the whole cluster without touching the callers: each keeps its own
tallies (`families.py`), `ClusterMetrics` (`shared/metrics_sync.py`) publishes their values
(`tally_values`) to Redis, and a scrape sums every live process's with `render_sum`. The rest of a
scrape is this process's own: the process collector, and the scrape-time `StateCollector`, whose
cooldowns and credential counts already come from the shared health but whose in-flight and
WebSocket gauges count this process only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Info, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from cliproxy import __version__
from cliproxy.metrics.families import Families, HistogramTally, TallyCollector, build_families
from cliproxy.metrics.requests import RequestMetrics
from cliproxy.runtime import Runtime
from cliproxy.usage import UsageRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the Prometheus text format


class Metrics:
    """See the module docstring."""

    __slots__ = ("enabled", "families", "registry", "requests", "tallies")

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.families: Families = build_families()
        settings = runtime.config.metrics
        self.requests = RequestMetrics(self.families, label_limit=settings.max_label_values)
        self.tallies = TallyCollector(self.families, self.requests.fold)
        self.registry.register(self.tallies)
        self.enabled = settings.enabled
        self.requests.follow_keys(runtime.keys)
        Info("cliproxy_build", "The running cliproxy version.", registry=self.registry).info({"version": __version__})
        ProcessCollector(registry=self.registry)  # CPU seconds, resident memory, open files of this process

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def on_swap(self, old: Runtime, new: Runtime) -> None:
        """Runtime swap listener: the settings and the client keys' labels of the new snapshot."""
        settings = new.config.metrics
        self.enabled = settings.enabled
        requests = self.requests
        requests.model_cap.limit = requests.key_cap.limit = settings.max_label_values
        requests.follow_keys(new.keys)

    def observe(self, record: UsageRecord) -> None:
        """The usage subscriber."""
        if self.enabled:
            self.requests.observe(record)

    def render(self) -> bytes:
        """One scrape in the Prometheus text format."""
        return generate_latest(self.registry)

    def tally_values(self) -> dict[str, list[list[Any]]]:
        """This process's tallies, brought up to date, as plain data: family name → [label values,
        total (a counter) or row (a histogram)], what a process publishes for a cluster-wide scrape."""
        self.requests.fold()
        return {
            tally.name: [[[str(v) for v in labels], value] for labels, value in tally.values.items()]
            for tally in self.families.exposed()
        }

    def render_sum(self, published: Iterable[dict[str, list[list[Any]]]]) -> bytes:
        """One scrape whose request tallies are the sums of `published` (every live process of a
        cluster, this one included); the process and state collectors are this process's."""
        merged = build_families()
        by_name = {tally.name: tally for tally in merged.exposed()}
        for values in published:
            for name, rows in values.items():
                tally = by_name.get(name)
                if tally is None:
                    continue
                for labels, value in rows:
                    key = tuple(labels)
                    if isinstance(tally, HistogramTally):
                        row = tally.values.setdefault(key, [0.0] * len(value))
                        for index, count in enumerate(value[: len(row)]):
                            row[index] += count
                    else:
                        tally.values[key] = tally.values.get(key, 0.0) + value
        own, self.tallies.families = self.tallies.families, merged
        try:
            return generate_latest(self.registry)
        finally:
            self.tallies.families = own
