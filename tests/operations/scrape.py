"""Scraping `/metrics` and reading it with `prometheus_client`'s own text parser."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str, **request: Any) -> Samples:
    """Every sample of one scrape: (sample name, labels) → value."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics", **request) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def key_hash(key: str) -> str:
    """How a plain client key is named in metrics."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]
