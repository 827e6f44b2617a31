"""An upstream's own Responses WebSocket (Codex, xAI): open it, send frames, read its events.

Every wait on the network is bounded by the credential's `upstream-timeouts`: the handshake by
`connect` + `first_byte`, the first event of a response by `first_byte`, each later event by
`idle`. A handshake the upstream refuses raises `HandshakeRefused` with its status (and the
headers it sent), so routing classifies it like an HTTP answer; a closed or broken socket raises
`aiohttp` client errors; a binary frame is a protocol error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from cliproxy import jsonio
from cliproxy.upstream.clients import Sessions, Timeouts, UpstreamTimeout
from cliproxy.upstream.http1 import UpstreamProtocolError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024
CLOSE_TIMEOUT_SECONDS = 10.0
HEARTBEAT_SECONDS = 30.0


class HandshakeRefused(Exception):
    """The upstream answered the upgrade with an HTTP status instead of a WebSocket."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(f"the upstream refused the WebSocket with HTTP {status}")
        self.status = status
        self.headers = dict(headers)


class SocketClosed(aiohttp.ClientError):
    """The upstream closed its WebSocket (or it broke) while a response was expected."""


def ws_url(url: str) -> str:
    """`http(s)://…` → `ws(s)://…`."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


class UpstreamSocket:
    """One open upstream WebSocket; `events()` reads the JSON event frames of the current response."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, url: str, timeouts: Timeouts) -> None:
        self.ws = ws
        self.url = url
        self.timeouts = timeouts

    @classmethod
    async def open(
        cls, sessions: Sessions, url: str, headers: Mapping[str, str], *, proxy_url: str, timeouts: Timeouts
    ) -> UpstreamSocket:
        session, proxy = sessions.session_for(proxy_url, url)
        try:
            async with asyncio.timeout(timeouts.connect + timeouts.first_byte):
                ws = await session.ws_connect(
                    ws_url(url),
                    headers=dict(headers),
                    proxy=proxy,
                    heartbeat=HEARTBEAT_SECONDS,
                    max_msg_size=MAX_MESSAGE_BYTES,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT_SECONDS),
                )
        except aiohttp.WSServerHandshakeError as exc:
            raise HandshakeRefused(exc.status, exc.headers or {}) from None
        except TimeoutError:
            raise UpstreamTimeout(f"the upstream WebSocket did not open within {timeouts.first_byte:g} s") from None
        return cls(ws, url, timeouts)

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, frame: Mapping[str, Any]) -> None:
        try:
            async with asyncio.timeout(self.timeouts.connect):
                await self.ws.send_str(jsonio.dumps(dict(frame)).decode())
        except TimeoutError:
            raise UpstreamTimeout("the upstream WebSocket took no frame in time") from None
        except (ConnectionError, RuntimeError) as exc:
            raise SocketClosed(f"the upstream WebSocket is gone ({type(exc).__name__})") from None

    async def receive(self, wait: float) -> bytes:
        """The next text frame (its JSON bytes), within `wait` seconds."""
        try:
            async with asyncio.timeout(wait):
                msg = await self.ws.receive()
        except TimeoutError:
            raise UpstreamTimeout(f"the upstream WebSocket sent nothing for {wait:g} s") from None
        if msg.type is aiohttp.WSMsgType.TEXT:
            data: str = msg.data
            return data.encode()
        if msg.type is aiohttp.WSMsgType.BINARY:
            raise UpstreamProtocolError("the upstream WebSocket sent a binary frame")
        if msg.type is aiohttp.WSMsgType.ERROR:
            raise SocketClosed(f"the upstream WebSocket broke ({type(msg.data).__name__})")
        code = self.ws.close_code
        raise SocketClosed(f"the upstream closed its WebSocket ({code})" if code else "the upstream WebSocket closed")

    async def close(self) -> None:
        if not self.ws.closed:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                    await self.ws.close()
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                log.debug("upstream WebSocket close did not finish cleanly")
