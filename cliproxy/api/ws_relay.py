"""`/v1/ws`: the WebSocket endpoint whose auth follows `ws-auth`, as in CLIProxyAPI.

Only the connection rules are implemented here: the front door asks for a client key before the
upgrade while `ws-auth` is true and lets anyone in while it is false; switching it from false to
true by a reload closes every open session (they were admitted without a key); application pings
(`{"type":"ping","id":...}`) get `{"type":"pong","id":...}`. The AI Studio reverse relay that
upstream runs over this socket (the socket becoming an `aistudio` credential) is not built.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from cliproxy import jsonio
from cliproxy.runtime import Runtime

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
HEARTBEAT_SECONDS = 30.0


@dataclass
class RelaySessions:
    """Open `/v1/ws` sockets, so a change of `ws-auth` can reach them."""

    open: set[web.WebSocketResponse] = field(default_factory=set)
    closing: set[asyncio.Task[bool]] = field(default_factory=set)

    def on_swap(self, old: Runtime, new: Runtime) -> None:
        """Runtime swap listener: false → true closes every session admitted without a key."""
        if old.config.ws_auth or not new.config.ws_auth or not self.open:
            return
        log.info("ws-auth enabled: closing %d /v1/ws session(s)", len(self.open))
        for ws in list(self.open):
            task = asyncio.ensure_future(ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"ws-auth enabled"))
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)

    async def close_on_shutdown(self, _app: web.Application) -> None:
        """`on_shutdown`: idle sockets would otherwise hold graceful shutdown for its whole grace."""
        for ws in list(self.open):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


RELAY_SESSIONS = web.AppKey("relay_sessions", RelaySessions)


async def relay_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    sessions = request.app[RELAY_SESSIONS]
    sessions.open.add(ws)
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                envelope = jsonio.loads(msg.data)
            except ValueError:
                continue
            if isinstance(envelope, dict) and envelope.get("type") == "ping":
                await ws.send_str(jsonio.dumps({"id": envelope.get("id"), "type": "pong"}).decode())
            else:
                log.debug("/v1/ws: ignoring a message (the AI Studio relay is not implemented)")
    finally:
        sessions.open.discard(ws)
    return ws
