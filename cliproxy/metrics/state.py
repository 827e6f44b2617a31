"""Gauges read at scrape time: cooldowns, credentials by state, in-flight requests, WebSockets.

Nothing keeps these up to date between scrapes: the collector asks the services that already know
(the credential health's snapshot, the current runtime's catalog, the usage store's in-flight count,
the WebSocket registries) when Prometheus asks. With shared state, the health snapshot is already
the cluster's view; the in-flight and WebSocket counts are this process's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cliproxy.metrics.labels import OTHER
from cliproxy.routing.health import CredentialHealth
from cliproxy.runtime import RuntimeHolder

CREDENTIAL_STATES = ("active", "cooling", "disabled")


class StateCollector(Collector):
    """A custom collector: every sample computed from the services when `/metrics` is scraped."""

    def __init__(
        self,
        *,
        holder: RuntimeHolder,
        health: CredentialHealth,
        in_flight: Callable[[], int],
        websockets: Callable[[], int],
    ) -> None:
        self.holder = holder
        self.health = health
        self.in_flight = in_flight
        self.websockets = websockets

    def collect(self) -> Iterator[GaugeMetricFamily]:
        credentials = self.holder.current.catalog.credentials
        provider_of = {cred.id: cred.provider for cred in credentials}
        cooldowns = GaugeMetricFamily(
            "cliproxy_credential_cooldown_seconds",
            "Seconds left on each cooling (credential, model) pair.",
            labels=("provider", "credential", "model"),
        )
        cooling: set[str] = set()
        for view in self.health.snapshot():
            if view.seconds <= 0:
                continue
            cooling.add(view.credential_id)
            provider = provider_of.get(view.credential_id, OTHER)
            cooldowns.add_metric((provider, view.credential_id, view.model), view.seconds)
        yield cooldowns
        counts: dict[tuple[str, str], int] = {}
        for cred in credentials:
            for state in CREDENTIAL_STATES:  # every state of every provider, so none disappears at 0
                counts.setdefault((cred.provider, state), 0)
            state = "disabled" if cred.disabled else "cooling" if cred.id in cooling else "active"
            counts[(cred.provider, state)] += 1
        by_state = GaugeMetricFamily(
            "cliproxy_credentials",
            "Upstream credentials by provider and state (cooling: at least one of its models is cooling down).",
            labels=("provider", "state"),
        )
        for (provider, state), count in sorted(counts.items()):
            by_state.add_metric((provider, state), count)
        yield by_state
        yield GaugeMetricFamily(
            "cliproxy_inflight_requests", "Requests being routed or streamed in this process.", value=self.in_flight()
        )
        yield GaugeMetricFamily(
            "cliproxy_websocket_sessions", "Open WebSocket sessions in this process.", value=self.websockets()
        )
