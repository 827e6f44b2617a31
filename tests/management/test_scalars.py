"""Scalar settings: GET shapes, typed `{"value": ...}` writes, `invalid body`, routing strategy spellings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

BASE = "host: 127.0.0.1\n" + MANAGEMENT_BLOCK

CASES: list[tuple[str, Any, Any]] = [
    # url, default GET value, a value to write
    ("debug", False, True),
    ("request-log", False, True),
    ("ws-auth", True, False),
    ("request-retry", 0, 4),
    ("max-retry-interval", 0, 45),
    ("max-retry-credentials", 0, 2),
    ("force-model-prefix", False, True),
    ("usage-statistics-enabled", False, True),
    ("logging-to-file", False, True),
    ("proxy-url", "", "socks5://127.0.0.1:1080"),
]


@pytest.mark.parametrize(("url", "default", "value"), CASES)
async def test_get_put_patch(proxy: ProxyFactory, tmp_path: Path, url: str, default: Any, value: Any) -> None:
    mgmt = Mgmt(await proxy(BASE))
    reply = await mgmt.get(f"/{url}")
    assert (reply.status, reply.json()) == (200, {url: default})
    assert reply.headers["Cache-Control"] == "no-store"
    reply = await mgmt.put(f"/{url}", json={"value": value})
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    assert (await mgmt.get(f"/{url}")).json() == {url: value}
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())[url] == value
    reply = await mgmt.patch(f"/{url}", json={"value": default})
    assert reply.status == 200
    assert (await mgmt.get(f"/{url}")).json() == {url: default}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("debug", {"value": "true"}),
        ("debug", {"value": 1}),
        ("debug", {}),
        ("debug", ["value"]),
        ("request-retry", {"value": True}),
        ("request-retry", {"value": 1.5}),
        ("request-retry", {"value": "3"}),
        ("proxy-url", {"value": 5}),
        ("routing/strategy", {"value": 1}),
    ],
)
async def test_wrong_type_or_missing_value_is_invalid_body(
    proxy: ProxyFactory, tmp_path: Path, url: str, body: Any
) -> None:
    mgmt = Mgmt(await proxy(BASE))
    before = (tmp_path / "config.yaml").read_bytes()
    reply = await mgmt.put(f"/{url}", json=body)
    assert (reply.status, reply.body) == (400, b'{"error":"invalid body"}')
    reply = await mgmt.put(f"/{url}", data=b"{not json")
    assert (reply.status, reply.body) == (400, b'{"error":"invalid body"}')
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_proxy_url_delete_clears_it(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(BASE + 'proxy-url: "http://proxy.local:3128"\n'))
    assert (await mgmt.get("/proxy-url")).json() == {"proxy-url": "http://proxy.local:3128"}
    assert (await mgmt.delete("/proxy-url")).json() == {"status": "ok"}
    assert (await mgmt.get("/proxy-url")).json() == {"proxy-url": ""}


async def test_negative_log_limits_are_normalised(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(BASE))
    assert (await mgmt.get("/error-logs-max-files")).json() == {"error-logs-max-files": 10}
    await mgmt.put("/error-logs-max-files", json={"value": -3})
    assert (await mgmt.get("/error-logs-max-files")).json() == {"error-logs-max-files": 10}
    await mgmt.put("/logs-max-total-size-mb", json={"value": -1})
    assert (await mgmt.get("/logs-max-total-size-mb")).json() == {"logs-max-total-size-mb": 0}


async def test_nested_quota_switches(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(BASE))
    assert (await mgmt.get("/quota-exceeded/switch-project")).json() == {"switch-project": True}
    await mgmt.put("/quota-exceeded/switch-project", json={"value": False})
    assert (await mgmt.get("/quota-exceeded/switch-project")).json() == {"switch-project": False}


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("", "round-robin"),
        ("rr", "round-robin"),
        ("roundrobin", "round-robin"),
        ("WRR", "weighted-round-robin"),
        ("weightedroundrobin", "weighted-round-robin"),
        ("ff", "fill-first"),
        ("fillfirst", "fill-first"),
        ("fill-first", "fill-first"),
    ],
)
async def test_routing_strategy(proxy: ProxyFactory, tmp_path: Path, spelling: str, canonical: str) -> None:
    mgmt = Mgmt(await proxy(BASE + "routing:\n  strategy: fill-first # how to pick\n"))
    assert (await mgmt.get("/routing/strategy")).json() == {"strategy": "fill-first"}
    reply = await mgmt.patch("/routing/strategy", json={"value": spelling})
    assert reply.status == 200
    assert (await mgmt.get("/routing/strategy")).json() == {"strategy": canonical}
    assert "# how to pick" in (tmp_path / "config.yaml").read_text()


async def test_unknown_strategy(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(BASE))
    reply = await mgmt.put("/routing/strategy", json={"value": "random"})
    assert (reply.status, reply.body) == (400, b'{"error":"invalid strategy"}')
