"""Per-credential transport settings through the real app: `proxy-url` (an HTTP forward proxy and a
SOCKS5 proxy, both tiny local servers here; `direct`/`none` past an environment proxy), `headers`
with `$Header` copies, the default-base auth spelling, and stable credential ids across reloads."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from cliproxy.server.services import SERVICES
from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


@dataclass
class LocalProxy:
    """An HTTP forward proxy or a SOCKS5 proxy on 127.0.0.1 that records where it was asked to go."""

    socks: bool = False
    targets: list[str] = field(default_factory=list)
    port: int = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _relay(
        self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter, host: str, port: int, first: bytes
    ) -> None:
        ur, uw = await asyncio.open_connection(host, port)
        if first:
            uw.write(first)
        await asyncio.gather(self._pipe(cr, uw), self._pipe(ur, cw))

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method == "CONNECT":
            self.targets.append(f"CONNECT {target}")  # HTTPS targets: recorded, then refused
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        self.targets.append(f"{method} {target}")
        hostport = target.split("//", 1)[1].split("/", 1)[0]
        host, _, port = hostport.partition(":")
        await self._relay(reader, writer, host, int(port or 80), head)  # aiohttp accepts absolute-form

    async def _socks(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        await reader.readexactly(count)
        writer.write(b"\x05\x00")  # no authentication
        _, command, _, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        else:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        self.targets.append(f"SOCKS {host}:{port}")
        assert version == 5 and command == 1
        writer.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        await self._relay(reader, writer, host, port, b"")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await (self._socks if self.socks else self._http)(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def local_proxy() -> AsyncIterator[type[LocalProxy]]:
    servers: list[asyncio.Server] = []

    class Started(LocalProxy):
        @classmethod
        async def start(cls, **kwargs: bool) -> LocalProxy:  # type: ignore[misc]
            proxy = LocalProxy(**kwargs)
            server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
            proxy.port = server.sockets[0].getsockname()[1]
            servers.append(server)
            return proxy

    yield Started
    for server in servers:
        server.close()


def compat(base: str, *, own: str = "", top: str = "", headers: str = "") -> str:
    own_line = f"\n        proxy-url: {own}" if own else ""
    return f"""{f"proxy-url: {top}" if top else ""}
openai-compatibility:
  - name: fake
    base-url: {base}/v1{headers}
    api-key-entries:
      - api-key: sk-up{own_line}
    models: [{{name: gpt-fake}}]
"""


async def chat(proxy: Proxy, **headers: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {CLIENT_KEY}", **headers},
        ) as resp,
    ):
        await resp.read()
        return resp.status


@pytest.mark.parametrize("where", ["own", "global"])
async def test_http_proxy(
    where: str, local_proxy: type[LocalProxy], upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    hop = await local_proxy.start()  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{hop.port}"
    proxy = await start_proxy(compat(base, own=url) if where == "own" else compat(base, top=url))
    assert await chat(proxy) == 200
    assert hop.targets == [f"POST {base}/v1/chat/completions"]
    assert fake.seen[0].header("Authorization") == "Bearer sk-up"


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_socks5_proxy(
    scheme: str, local_proxy: type[LocalProxy], upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    hop = await local_proxy.start(socks=True)  # type: ignore[attr-defined]
    proxy = await start_proxy(compat(base, own=f"{scheme}://127.0.0.1:{hop.port}"))
    assert await chat(proxy) == 200
    assert await chat(proxy) == 200
    assert hop.targets == [f"SOCKS {base.removeprefix('http://')}"]  # one pooled connection
    assert len(fake.seen) == 2


@pytest.mark.parametrize("value", ["", "direct", "none", "DIRECT"])
async def test_direct_bypasses_environment_proxy(
    value: str,
    local_proxy: type[LocalProxy],
    upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = upstream
    hop = await local_proxy.start()  # type: ignore[attr-defined]
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{hop.port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = await start_proxy(compat(base, own=value))
    assert await chat(proxy) == 200 and len(fake.seen) == 1
    # no setting follows the environment proxy; `direct`/`none` go straight to the upstream
    assert hop.targets == ([] if value else [f"POST {base}/v1/chat/completions"])


async def test_default_anthropic_base_uses_x_api_key(local_proxy: type[LocalProxy], start_proxy: Starter) -> None:
    """No base-url: api.anthropic.com with `x-api-key` (the CONNECT shows the host; we never reach it)."""
    hop = await local_proxy.start()  # type: ignore[attr-defined]
    proxy = await start_proxy(
        f"claude-api-key:\n  - api-key: sk-ant-real\n    proxy-url: http://127.0.0.1:{hop.port}\n"
        "    models: [{name: claude-fake-1}]\n"
        "  - api-key: sk-ant-custom\n    base-url: https://gateway.example\n    proxy-url: http://127.0.0.1:{port}\n"
        "    models: [{name: claude-other}]\n".replace("{port}", str(hop.port))
    )
    creds = {c.api_key: c for c in proxy.server.app[SERVICES].holder.current.catalog.credentials}
    assert creds["sk-ant-real"].headers["x-api-key"] == "sk-ant-real"
    assert "Authorization" not in creds["sk-ant-real"].headers
    assert creds["sk-ant-custom"].headers["Authorization"] == "Bearer sk-ant-custom"
    assert "x-api-key" not in creds["sk-ant-custom"].headers
    async with aiohttp.ClientSession() as http:
        for model in ("claude-fake-1", "claude-other"):
            async with http.post(
                proxy.url + "/v1/messages",
                json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
                headers={"x-api-key": CLIENT_KEY},
            ) as resp:
                assert resp.status == 502
                assert (await resp.json())["type"] == "error"
    assert hop.targets == ["CONNECT api.anthropic.com:443", "CONNECT gateway.example:443"]


async def test_static_headers_and_dollar_copies(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    headers = """
    headers:
      X-Static: fixed
      X-Copied: $X-Client-Trace
      X-Missing: $X-Not-Sent"""
    proxy = await start_proxy(compat(base, headers=headers))
    assert await chat(proxy, **{"X-Client-Trace": "trace-123"}) == 200
    assert await chat(proxy) == 200
    first, second = fake.seen
    assert first.header("X-Static") == "fixed" and first.header("X-Copied") == "trace-123"
    assert first.header("X-Missing") is None and first.header("X-Client-Trace") is None
    assert second.header("X-Static") == "fixed" and second.header("X-Copied") is None


async def test_credential_ids_and_cooldowns_survive_reload(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(compat(base), clock=clock)
    app = proxy.server.app
    (before,) = app[SERVICES].holder.current.catalog.credentials
    fake.fail(429, headers={"Retry-After": "30"})
    assert await chat(proxy) == 429
    path = app[SERVICES].holder.current.config_path
    text = path.read_text()
    # non-identity edits: another model, a priority; the cooldown must still hold afterwards
    path.write_text(
        text.replace("models: [{name: gpt-fake}]", "priority: 3\n    models: [{name: gpt-fake}, {name: more}]")
    )
    await app[SERVICES].reloader.reload_now(force=True)
    (after,) = app[SERVICES].holder.current.catalog.credentials
    assert after is not before and after.id == before.id and after.priority == 3
    assert await chat(proxy) == 429 and len(fake.seen) == 1  # still cooling: no upstream call
    # an identity edit (the key) is a new credential with a fresh state
    path.write_text(path.read_text().replace("sk-up", "sk-up-rotated"))
    await app[SERVICES].reloader.reload_now(force=True)
    (rotated,) = app[SERVICES].holder.current.catalog.credentials
    assert rotated.id != before.id and rotated.id.startswith("openai-compatibility:fake:")
    assert await chat(proxy) == 200


async def test_configured_headers_win_once_over_defaults_and_client(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """A configured `anthropic-version` replaces the default and the client's value; a `$Header` copy
    target is never the client's own value; each header goes out once, whatever its spelling."""
    fake, base = upstream
    proxy = await start_proxy(
        f"claude-api-key:\n  - api-key: k\n    base-url: {base}\n    models: [{{name: c1}}]\n"
        "    headers:\n      anthropic-version: '2024-01-01'\n      ANTHROPIC-BETA: $X-Team-Beta\n"
    )
    async with aiohttp.ClientSession() as http:
        for extra in ({"X-Team-Beta": "team"}, {}):
            async with http.post(
                proxy.url + "/v1/messages",
                json={"model": "c1", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
                headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": "cli", **extra},
            ) as resp:
                assert resp.status == 200
    for seen, beta in zip(fake.seen, (["team"], []), strict=True):
        lines = [(k.lower(), v) for k, v in seen.header_list]
        assert [v for k, v in lines if k == "anthropic-version"] == ["2024-01-01"]
        assert [v for k, v in lines if k == "anthropic-beta"] == beta
