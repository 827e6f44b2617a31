"""The metric families cliproxy exports (names and labels are part of its interface).

Counters and histograms are `prometheus_client` objects on one `CollectorRegistry` per server, so
that several worker processes can later share them through `prometheus_client`'s multiprocess mode
(each process writes its values to its own memory-mapped file and a scrape sums them) without
changing a line that increments them. The gauges read at scrape time are in `state.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds. An LLM request takes from tens of milliseconds (a cached count) to minutes (a long stream).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
TOKEN_KINDS = ("input", "output", "cached", "reasoning")
ATTEMPT_OUTCOMES = ("ok", "failover", "cooldown", "timeout", "error")


@dataclass(frozen=True, slots=True)
class Families:
    """Every counter and histogram; label names in the order `labels()` takes their values."""

    requests: Counter
    duration: Histogram
    ttfb: Histogram
    attempts: Counter
    tokens: Counter
    cost: Counter
    oauth_refresh: Counter
    config_reloads: Counter


def build_families(registry: CollectorRegistry) -> Families:
    return Families(
        requests=Counter(
            "cliproxy_requests_total",
            "API requests by route, client dialect, HTTP status, client key and the model asked for.",
            ("route", "dialect", "status", "client_key", "model"),
            registry=registry,
        ),
        duration=Histogram(
            "cliproxy_request_duration_seconds",
            "Time from routing a request to its last byte (streams included).",
            ("dialect", "model"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        ),
        ttfb=Histogram(
            "cliproxy_time_to_first_byte_seconds",
            "Time from routing a request to the upstream's first answer byte it committed to.",
            ("dialect", "model"),
            buckets=TTFB_BUCKETS,
            registry=registry,
        ),
        attempts=Counter(
            "cliproxy_upstream_attempts_total",
            "Upstream attempts by provider, credential id and outcome (ok, failover, cooldown, timeout, error).",
            ("provider", "credential", "outcome"),
            registry=registry,
        ),
        tokens=Counter(
            "cliproxy_tokens_total",
            "Tokens the upstreams reported, by client key, model and kind (input, output, cached, reasoning).",
            ("client_key", "model", "kind"),
            registry=registry,
        ),
        cost=Counter(
            "cliproxy_cost_usd_total",
            "Cost in USD at litellm's list prices (requests of models without a known price add nothing).",
            ("client_key", "model"),
            registry=registry,
        ),
        oauth_refresh=Counter(
            "cliproxy_oauth_refresh_total",
            "OAuth token refreshes by provider and outcome (ok, error, rejected: the refresh token is dead).",
            ("provider", "outcome"),
            registry=registry,
        ),
        config_reloads=Counter(
            "cliproxy_config_reloads_total",
            "Config and auth-dir reloads that changed something (ok) or were refused (error).",
            ("outcome",),
            registry=registry,
        ),
    )
