"""Who may scrape `/metrics`: loopback peers freely, anyone else with the management secret (or
`metrics.allow-remote`). Local means the socket peer; `X-Forwarded-For` only counts when that peer
is a trusted proxy, and then it can make a request remote but never local."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import app_from_config, write_config
from tests.fakes.fixtures import Starter

SECRET = "management-secret-for-metrics"
SECRET_HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
TRUSTED_PEER = "127.0.0.2"  # a second address on the loopback range, configured as a trusted proxy
REMOTE_CLIENT = "203.0.113.7"


def config(extra: str = "") -> str:
    return f"""
api-keys: [sk-client-metrics-0001]
trusted-proxies: ["{TRUSTED_PEER}/32"]
remote-management:
  secret-key: "{SECRET_HASH}"
{extra}
"""


async def get(
    url: str, path: str = "/metrics", *, source: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any] | str, Any]:
    """GET from `source` (a local address to connect from): (status, JSON or text, headers)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None)
    async with aiohttp.ClientSession(connector=connector) as http, http.get(url + path, headers=headers) as resp:
        body: dict[str, Any] | str = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp.headers


def through_proxy(client: str, key: str | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": client}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def test_loopback_is_open_and_a_forwarded_header_from_it_is_ignored(start_proxy: Starter) -> None:
    proxy = await start_proxy(config())
    status, text, _ = await get(proxy.url)
    assert status == 200 and "cliproxy_requests_total" in str(text)
    status, _, _ = await get(proxy.url, headers={"X-Forwarded-For": REMOTE_CLIENT})  # 127.0.0.1 is not trusted
    assert status == 200


async def test_a_remote_client_through_a_trusted_proxy_needs_the_management_secret(start_proxy: Starter) -> None:
    proxy = await start_proxy(config())
    status, body, headers = await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT))
    assert status == 401 and body == {"error": "missing management key"}
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT, "wrong-key"))
    assert status == 401 and body == {"error": "invalid management key"}
    status, text, _ = await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT, SECRET))
    assert status == 200 and "cliproxy_credentials" in str(text)
    # A forged hop in front of the real client changes nothing: the proxy appended the real one.
    forged = through_proxy(f"127.0.0.1, {REMOTE_CLIENT}")
    assert (await get(proxy.url, source=TRUSTED_PEER, headers=forged))[0] == 401
    # The trusted proxy forwarding a client on this machine: local.
    assert (await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy("127.0.0.1")))[0] == 200


async def test_allow_remote_opens_it_and_enabled_false_closes_it(start_proxy: Starter) -> None:
    proxy = await start_proxy(config("metrics:\n  allow-remote: true"))
    assert (await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT)))[0] == 200
    closed = await start_proxy(config("metrics:\n  enabled: false"))
    assert (await get(closed.url))[0] == 404


async def test_without_a_management_secret_remote_scrapes_are_refused(start_proxy: Starter) -> None:
    proxy = await start_proxy(f'api-keys: [sk-client-metrics-0001]\ntrusted-proxies: ["{TRUSTED_PEER}/32"]\n')
    status, body, _ = await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT, SECRET))
    assert status == 403 and "metrics.allow-remote" in str(body)


async def test_wrong_keys_count_towards_the_management_ban(start_proxy: Starter) -> None:
    proxy = await start_proxy(config())
    for _ in range(5):
        status, _, _ = await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT, "nope"))
        assert status == 401
    status, body, _ = await get(proxy.url, source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT, SECRET))
    assert status == 403 and "banned" in str(body)
    management = await get(
        proxy.url, "/v0/management/config", source=TRUSTED_PEER, headers=through_proxy(REMOTE_CLIENT, SECRET)
    )
    assert management[0] == 403 and "banned" in str(management[1])  # one ban list for both


def outward_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


async def test_a_peer_on_another_address_is_remote_whatever_it_claims(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    app = app_from_config(write_config(tmp_path, config()))
    server = await aiohttp_server(app, host="0.0.0.0")
    url = f"http://{address}:{server.port}"
    assert (await get(url, source=address))[0] == 401
    assert (await get(url, source=address, headers={"X-Forwarded-For": "127.0.0.1"}))[0] == 401  # not trusted
    assert (await get(url, source=address, headers={"Authorization": f"Bearer {SECRET}"}))[0] == 200
