"""What every upstream executor shares: the credential shape it reads, the executor interface, sessions.

An executor knows one upstream kind: its wire dialect, its URLs and how it authenticates. It knows
nothing about clients or translation. Static auth headers are computed once per credential when the
snapshot is built; executors whose tokens change (OAuth, service accounts) override `fresh_auth`,
which the dispatcher awaits per attempt, and `can_refresh`, which enables the "401 → refresh once
and retry the same credential" path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from multidict import CIMultiDictProxy

from cliproxy.translate import Dialect
from cliproxy.upstream.http1 import Http1Pool

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 15.0
READ_TIMEOUT_SECONDS = 600.0  # silence between two upstream chunks (reasoning models think for minutes)


class UpstreamCredential(Protocol):
    """The fields of a credential an executor may read (`routing.credentials.Credential` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def source(self) -> Any: ...


class Executor:
    """One upstream kind. Subclasses set the class attributes and `url`; OAuth kinds add `fresh_auth`."""

    kind: ClassVar[str] = ""
    dialect: ClassVar[Dialect] = Dialect.CHAT
    always_stream: ClassVar[bool] = False  # upstream only answers with SSE (ChatGPT Codex backend)
    dynamic_auth: ClassVar[bool] = False  # True when `fresh_auth` must be awaited per attempt
    forward_headers: ClassVar[tuple[str, ...]] = ()  # client headers worth passing on, in this spelling
    default_headers: ClassVar[Mapping[str, str]] = {}  # sent when the client did not send the header
    rewrites_body: ClassVar[bool] = False  # True when `prepare_body` must see every generate request

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        raise NotImplementedError

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        """Headers that authenticate this credential, computed once per snapshot."""
        return {}

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        """Per-attempt auth headers (token minting or refresh). `force_refresh` after an upstream 401."""
        return {}

    def can_refresh(self, cred: UpstreamCredential) -> bool:
        """Whether a 401 from this credential is worth one refresh and a retry on the same credential."""
        return False

    def combine_headers(self, headers: Mapping[str, str], auth: Mapping[str, str]) -> dict[str, str]:
        """Merge `fresh_auth` headers into the request's (a kind may append to a header instead)."""
        return {**headers, **auth}

    def prepare_body(self, body: dict[str, Any]) -> bool:
        """Fit a request body to this upstream's quirks, in place (`rewrites_body` kinds only).

        Returns True when anything changed, so an untouched passthrough body keeps its bytes.
        """
        return False


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


class UpstreamBody(Protocol):
    """The streaming body of an upstream answer (aiohttp's `StreamReader`, or `http1_response.Body`)."""

    async def readany(self) -> bytes: ...
    def iter_any(self) -> AsyncIterator[bytes]: ...


class UpstreamResponse(Protocol):
    """An upstream answer whose status and headers are known; the body is still on the wire.

    Both clients give one: `aiohttp.ClientResponse` for proxied calls, `http1_response.Response` for direct ones.
    """

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
    """What sends an upstream POST: an `aiohttp.ClientSession` or the lean `Http1Pool`."""

    def post(
        self, url: str, *, data: bytes, headers: Mapping[str, str], proxy: str | None, allow_redirects: bool
    ) -> Any: ...


class Sessions:
    """Upstream clients: the lean `Http1Pool` for direct calls, one pooled `ClientSession` per proxy.

    No proxy setting uses environment proxies (`env_proxy`, resolved by the caller), `direct`/`none`
    ignore them; http(s) proxies ride on the direct session with aiohttp's `proxy=`; socks URLs get
    their own connector.
    """

    __slots__ = ("_env_cache", "_env_proxies", "_http1", "_sessions")

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._http1 = Http1Pool(connect_timeout=CONNECT_TIMEOUT_SECONDS)
        # Environment proxies are read once: aiohttp's `trust_env` would run a netrc lookup in a
        # thread for every request, which costs more than the whole rest of a passthrough.
        self._env_proxies = {k: v for k, v in getproxies().items() if k in ("http", "https")}
        self._env_cache: dict[str, str | None] = {}

    def _new(self, connector: aiohttp.BaseConnector | None, *, trust_env: bool) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=None)
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

    def poster_for(self, proxy_url: str, url: str) -> tuple[UpstreamPoster, str | None]:
        """Like `session_for`, but direct calls (no proxy at all) go through the lean `Http1Pool`."""
        direct = proxy_url.lower() in ("direct", "none") if proxy_url else self.env_proxy(url) is None
        if direct and url.startswith(("http://", "https://")) and url.find("@", 8, url.find("/", 8)) < 0:
            return self._http1, None  # (a base-url with `user:pass@` keeps aiohttp's Basic auth)
        return self.session_for(proxy_url, url)

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
