"""`rediss://` against a real TLS-only redis-server whose certificate a throwaway CA signed: the CA
comes in through the URL's `ssl_ca_certs`, limits hold across two processes, and without that CA
(verification on by default) the proxy refuses to trust the server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cliproxy.shared.connection import RedisLink
from tests.fakes.upstreams import FakeUpstream
from tests.shared.cluster import PLAIN, compat_yaml, keys_yaml, start_nodes, stop_nodes
from tests.shared.conftest import PASSWORD, RedisServer
from tests.shared.test_limits_across_processes import ask
from tests.shared.test_redis_down import chat_error, ready_status

pytestmark = pytest.mark.subprocess


async def test_rediss_with_a_private_ca_holds_three_requests_a_minute_across_two_processes(
    tmp_path: Path, tls_redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, base = upstream
    url = tls_redis_server.url
    assert url.startswith(f"rediss://:{PASSWORD}@127.0.0.1:") and "?ssl_ca_certs=" in url
    nodes = await start_nodes(tmp_path, keys_yaml(max_requests_per_minute=3) + compat_yaml(base), url)
    try:
        ready = [await ready_status(node.url) for node in nodes]
        statuses = [await ask(nodes[i % 2].url) for i in range(6)]
    finally:
        stop_nodes(nodes)
    assert [status for status, _ in ready] == [200, 200], ready
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert len(fake.seen) == 3
    for node in nodes:
        assert "connected to Redis at rediss://:***@127.0.0.1:" in node.err
        assert "?ssl_ca_certs=" in node.err  # the masked URL keeps its query
        assert PASSWORD not in node.err + node.out


async def test_rediss_without_the_ca_does_not_trust_the_server_and_limited_keys_get_503(
    tmp_path: Path, tls_redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    url = tls_redis_server.url.split("?", 1)[0]  # the system's CAs only: they never signed this one
    body = keys_yaml(max_requests_per_minute=3) + compat_yaml(base)
    nodes = await start_nodes(tmp_path, body, url, count=1, wait_ready=False)
    try:
        ready_code, ready = await ready_status(nodes[0].url)
        limited = await chat_error(nodes[0].url)
        plain = await ask(nodes[0].url, PLAIN)
    finally:
        stop_nodes(nodes)
    assert ready_code == 503 and "CERTIFICATE_VERIFY_FAILED" in str(ready), ready
    assert PASSWORD not in str(ready)
    assert limited[0] == 503 and plain == 200


async def test_a_url_that_turns_certificate_checks_off_is_obeyed_and_logged(
    tls_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = tls_redis_server.url.split("?", 1)[0] + "?ssl_cert_reqs=none"
    caplog.set_level(logging.WARNING, "cliproxy.shared.connection")
    link = RedisLink(url, "tls-test:")
    await link.start()
    try:
        up = await link.wait_up(5)
    finally:
        await link.stop()
    assert up, link.last_error
    warned = [r.getMessage() for r in caplog.records if "turns off TLS" in r.getMessage()]
    assert warned == [
        "shared state: redis-url turns off TLS certificate verification (ssl_cert_reqs=none): anyone on the "
        "path to Redis can read and change the shared state"
    ]
