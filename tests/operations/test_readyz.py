"""`/readyz`: 200 once the config is loaded and the usage store is open, else 503 with the reason;
`/healthz` stays liveness only. Other services add their own checks to `Services.readiness`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from cliproxy.server.readiness import ReadinessCheck
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory


async def probe(url: str, path: str = "/readyz") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + path) as resp:
        return resp.status, await resp.json()


async def test_ready_with_the_usage_database_and_with_usage_in_memory(proxy: ProxyFactory) -> None:
    server = await proxy("api-keys: [sk-ready-0001]\nauth-dir: ./auths\n")
    assert await probe(str(server.make_url(""))) == (
        200,
        {"status": "ready", "checks": {"config": "ok", "usage-store": "ok"}},
    )
    memory = await proxy("api-keys: [sk-ready-0001]\nusage-db: off\n")
    assert (await probe(str(memory.make_url(""))))[0] == 200


async def test_a_usage_database_that_cannot_open_is_not_ready(proxy: ProxyFactory, tmp_path: Path) -> None:
    (tmp_path / "not-a-database").mkdir()
    server = await proxy(f"api-keys: [sk-ready-0001]\nusage-db: {tmp_path / 'not-a-database'}\n")
    url = str(server.make_url(""))
    status, body = await probe(url)
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"]["config"] == "ok"
    assert body["checks"]["usage-store"].startswith("usage-db is configured but not open")
    assert str(tmp_path) not in str(body)  # an open endpoint names no path
    assert (await probe(url, "/healthz"))[0] == 200  # alive all the same


async def test_a_later_service_adds_its_own_check(proxy: ProxyFactory) -> None:
    server = await proxy("api-keys: [sk-ready-0001]\nusage-db: off\n")
    checks = server.app[SERVICES].readiness
    answer: list[str | None] = ["shared state unreachable"]

    async def shared_state() -> str | None:
        return answer[0]

    async def broken() -> str | None:
        raise RuntimeError("bug")

    checks.append(ReadinessCheck("shared-state", shared_state))
    url = str(server.make_url(""))
    assert await probe(url) == (
        503,
        {
            "status": "not ready",
            "checks": {"config": "ok", "usage-store": "ok", "shared-state": "shared state unreachable"},
        },
    )
    answer[0] = None
    assert (await probe(url))[0] == 200
    checks.append(ReadinessCheck("broken", broken))
    status, body = await probe(url)
    assert status == 503 and body["checks"]["broken"] == "check failed (RuntimeError)"
