"""How the proxy reaches upstreams: a configured Host sent once, Happy Eyeballs past a dead address,
and the small faults around it (an empty Gemini model, request logs written side by side)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.dialects import ask, provider
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.raw import RawUpstream, good_answer

BLACKHOLE_V6 = "2001:db8::1"  # documentation prefix: packets go nowhere, a connect waits for its timeout


@pytest.fixture
async def raw() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(good_answer)
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.mark.parametrize("through", ["direct", "aiohttp"])
async def test_a_configured_host_is_sent_once_with_its_value(
    through: str, raw: RawUpstream, start_proxy: Starter
) -> None:
    """Both clients: the direct one, and aiohttp (a base-url with `user:pass@` goes through it)."""
    base = raw.base.replace("http://", "http://user:pass@") if through == "aiohttp" else raw.base
    extra = "    headers: {Host: api.example.test}\n"
    proxy = await start_proxy(provider("gemini", base, ("sk-up-a",), extra))
    assert (await ask(proxy, "gemini")).text
    (request,) = raw.requests
    assert request.headers("Host") == ["api.example.test"]


async def test_happy_eyeballs_gets_past_a_dead_address(
    raw: RawUpstream, start_proxy: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name resolves to a black-holed IPv6 address first and to the live IPv4 one second: the
    connect races the second after a quarter of a second instead of waiting out its timeout (set
    shorter than a connect to the dead address would take)."""
    port = int(raw.base.rsplit(":", 1)[1])
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def resolve(host: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "dual.example.test":
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (BLACKHOLE_V6, port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    base = f"http://dual.example.test:{port}"
    proxy = await start_proxy("upstream-timeouts: {connect-seconds: 2}\n" + provider("chat", base))
    assert (await ask(proxy, "chat")).text
    assert (await ask(proxy, "chat")).text  # the second one: from the DNS cache, on the kept connection
    assert len(raw.requests) == 2


@pytest.mark.parametrize("path", ["/v1beta/models/:generateContent", "/v1/models/models/:streamGenerateContent"])
async def test_an_empty_gemini_model_is_a_400_in_gemini_shape(path: str, start_proxy: Starter) -> None:
    proxy = await start_proxy("")
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.url + path, json={"contents": []}, headers={"x-goog-api-key": CLIENT_KEY}) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "model" in error["message"]


async def test_error_request_logs_written_side_by_side_are_all_kept_within_the_limit(
    raw: RawUpstream, start_proxy: Starter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many failed requests at once: every log is written (none lost to another write's pruning),
    and only the newest `error-logs-max-files` stay."""
    logs = tmp_path / "logs"

    async def refuse(request: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    raw.script = refuse
    proxy = await start_proxy(f"logs-dir: {logs}\nerror-logs-max-files: 3\n" + provider("chat", raw.base))
    outcomes = await asyncio.gather(*(ask(proxy, "chat") for _ in range(24)))
    assert {o.status for o in outcomes} == {400}
    for _ in range(200):
        if len([p for p in logs.glob("error-*.log")]) == 3 and not list(logs.glob(".*.tmp")):
            break
        await asyncio.sleep(0.02)
    assert len(list(logs.glob("error-*.log"))) == 3
    assert "request log not written" not in caplog.text


async def test_a_base_url_with_a_password_and_a_key_header_is_a_clear_502_not_a_500(
    raw: RawUpstream, start_proxy: Starter
) -> None:
    """`user:pass@` in the base-url and a credential that sends its own Authorization cannot both be
    used: the attempt fails with a message that says so (the process answers, nothing crashes)."""
    proxy = await start_proxy(provider("claude", raw.base.replace("http://", "http://user:pass@")))
    outcome = await ask(proxy, "claude")
    assert outcome.status == 502 and "could not be sent" in outcome.error, outcome
    assert raw.requests == []
