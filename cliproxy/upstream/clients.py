"""The upstream HTTP clients: the lean `Http1Pool` for direct calls, aiohttp through outbound proxies.

Both give routing the same thing, an `UpstreamPoster` whose `post` returns an `UpstreamResponse`
once the status and headers are known, and both keep the same bounds (`Timeouts`): the connect, the
response head, and the silence between two body reads. A bound that runs out raises
`UpstreamTimeout`; other failures raise `aiohttp` client errors.

No proxy setting uses the environment's proxies (`HTTPS_PROXY`, `NO_PROXY`), `direct`/`none` ignore
them; http(s) proxies ride on one aiohttp session with `proxy=`; socks URLs get their own connector.
Redirects are never followed: a credential must not travel to another address.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from multidict import CIMultiDictProxy

from cliproxy.upstream.http1 import Timeouts, UpstreamTimeout
from cliproxy.upstream.http1_pool import Http1Pool

__all__ = ["Sessions", "Timeouts", "UpstreamPoster", "UpstreamResponse", "UpstreamTimeout"]


class UpstreamBody(Protocol):
    """The streaming body of an upstream answer."""

    async def readany(self) -> bytes: ...
    def iter_any(self) -> AsyncIterator[bytes]: ...


class UpstreamResponse(Protocol):
    """An upstream answer whose status and headers are known; the body is still on the wire."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def content(self) -> UpstreamBody: ...
    async def read(self) -> bytes: ...
    def release(self) -> Any: ...
    def close(self) -> None: ...


class UpstreamPoster(Protocol):
    """What sends an upstream POST."""

    async def post(
        self, url: str, *, data: bytes, headers: Mapping[str, str], timeouts: Timeouts | None = None
    ) -> UpstreamResponse: ...


class _IdleBoundedBody:
    """aiohttp's body with `Timeouts.idle` between two reads (its own `sock_read` would also bound the
    wait for the head, which has its own, longer bound)."""

    __slots__ = ("_content", "_idle")

    def __init__(self, content: aiohttp.StreamReader, idle: float) -> None:
        self._content = content
        self._idle = idle

    async def readany(self) -> bytes:
        try:
            async with asyncio.timeout(self._idle):
                return await self._content.readany()
        except TimeoutError:
            raise UpstreamTimeout(f"the upstream sent nothing for {self._idle:g} s") from None

    async def read(self) -> bytes:
        chunks = []
        while chunk := await self.readany():
            chunks.append(chunk)
        return b"".join(chunks)

    def iter_any(self) -> _IdleBoundedBody:
        return self

    def __aiter__(self) -> _IdleBoundedBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk


class _ProxiedResponse:
    """An `aiohttp.ClientResponse` whose body reads are bounded by `Timeouts.idle`."""

    __slots__ = ("_resp", "content")

    def __init__(self, resp: aiohttp.ClientResponse, idle: float) -> None:
        self._resp = resp
        self.content = _IdleBoundedBody(resp.content, idle)

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._resp.headers

    async def read(self) -> bytes:
        return await self.content.read()

    def release(self) -> None:
        self._resp.release()

    def close(self) -> None:
        self._resp.close()


class AiohttpPoster:
    """Calls through an outbound proxy (http, https, socks): aiohttp, with the same bounds."""

    __slots__ = ("proxy", "session", "timeouts")

    def __init__(self, session: aiohttp.ClientSession, proxy: str | None, timeouts: Timeouts) -> None:
        self.session = session
        self.proxy = proxy
        self.timeouts = timeouts

    async def post(
        self, url: str, *, data: bytes, headers: Mapping[str, str], timeouts: Timeouts | None = None
    ) -> UpstreamResponse:
        timeouts = timeouts or self.timeouts
        connect = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect, sock_read=None)
        try:
            async with asyncio.timeout(timeouts.connect + timeouts.first_byte):
                resp = await self.session.post(
                    url, data=data, headers=headers, proxy=self.proxy, allow_redirects=False, timeout=connect
                )
        except aiohttp.ServerTimeoutError:
            raise
        except TimeoutError:
            raise UpstreamTimeout(f"no answer within {timeouts.first_byte:g} s") from None
        return _ProxiedResponse(resp, timeouts.idle)


class Sessions:
    """Upstream clients: the lean `Http1Pool` for direct calls, one pooled `ClientSession` per proxy."""

    __slots__ = ("_env_cache", "_env_proxies", "_http1", "_sessions", "timeouts")

    def __init__(self, timeouts: Timeouts | None = None) -> None:
        self.timeouts = timeouts or Timeouts()  # for calls that bring none
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._http1 = Http1Pool(timeouts=self.timeouts)
        # Environment proxies are read once: aiohttp's `trust_env` would run a netrc lookup in a
        # thread for every request, which costs more than the whole rest of a passthrough.
        self._env_proxies = {k: v for k, v in getproxies().items() if k in ("http", "https")}
        self._env_cache: dict[str, str | None] = {}

    def _new(self, connector: aiohttp.BaseConnector | None, *, trust_env: bool) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect, sock_read=None)
        return aiohttp.ClientSession(
            connector=connector or aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            # No cookie jar: a proxy must not carry one upstream's Set-Cookie (CDN/session cookies)
            # into the next client's request, and an empty jar is also no work per request.
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=timeout,
            trust_env=trust_env,
            skip_auto_headers=("User-Agent",),
        )

    def session_for(self, proxy_url: str, url: str) -> tuple[aiohttp.ClientSession, str | None]:
        """The session to use and the `proxy=` argument for a request to `url` under `proxy_url`."""
        lowered = proxy_url.lower()
        if not proxy_url:
            key, proxy = "direct", None
        elif lowered in ("direct", "none") or lowered.startswith(("http://", "https://")):
            key, proxy = "direct", (None if lowered in ("direct", "none") else proxy_url)
        else:
            key, proxy = proxy_url, None
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = self._make(key)
        if not proxy_url and self._env_proxies:
            proxy = self.env_proxy(url)
        return session, proxy

    def poster_for(self, proxy_url: str, url: str) -> UpstreamPoster:
        """The client for a request to `url` under `proxy_url`: direct calls use the lean `Http1Pool`."""
        direct = proxy_url.lower() in ("direct", "none") if proxy_url else self.env_proxy(url) is None
        if direct and url.startswith(("http://", "https://")) and url.find("@", 8, url.find("/", 8)) < 0:
            return self._http1  # (a base-url with `user:pass@` keeps aiohttp's Basic auth)
        session, proxy = self.session_for(proxy_url, url)
        return AiohttpPoster(session, proxy, self.timeouts)

    def env_proxy(self, url: str) -> str | None:
        """The environment proxy for `url` (`HTTPS_PROXY`, `NO_PROXY`…), cached per scheme and host."""
        if not self._env_proxies:
            return None
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._env_cache:
            proxy = self._env_proxies.get(parts.scheme)
            if proxy and proxy_bypass(parts.hostname or ""):
                proxy = None
            self._env_cache[key] = proxy
        return self._env_cache[key]

    def _make(self, key: str) -> aiohttp.ClientSession:
        if key == "direct":
            return self._new(None, trust_env=False)
        from aiohttp_socks import ProxyConnector, ProxyType

        parts = urlsplit(key)
        connector = ProxyConnector(
            proxy_type=ProxyType.SOCKS5,
            host=parts.hostname or "",
            port=parts.port or 1080,
            username=parts.username,
            password=parts.password,
            rdns=parts.scheme.lower() == "socks5h",
            limit=0,
            ttl_dns_cache=300,
        )
        return self._new(connector, trust_env=False)

    async def close(self) -> None:
        await self._http1.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
