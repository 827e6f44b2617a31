"""`/v1/ws`: the AI Studio relay's socket, with CLIProxyAPI's connection rules.

The front door asks for a client key before the upgrade while `ws-auth` is true and lets anyone in
while it is false; switching it from false to true by a reload closes every open session (they
were admitted without a key). A connected page becomes a runtime credential of provider
`aistudio` (`upstream/aistudio.py`): it joins the routing snapshot while it is connected
(`RuntimeHolder.add_runtime_credential`) and leaves it when it disconnects, failing the requests
still waiting on it. A second connection replaces the first. Application pings
(`{"type":"ping","id":...}`) get `{"type":"pong","id":...}`; the server pings every 30 s and
drops a page that stops answering.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from cliproxy import jsonio
from cliproxy.config.model import Config
from cliproxy.routing.credentials import Credential, runtime_credential
from cliproxy.runtime import Runtime, RuntimeHolder
from cliproxy.server.services import SERVICES
from cliproxy.upstream.aistudio import OWNER, PROVIDER, AIStudioExecutor, RelayChannel

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
HEARTBEAT_SECONDS = 30.0
WRITE_TIMEOUT_SECONDS = 10.0


@dataclass
class RelaySessions:
    """Open `/v1/ws` sockets (so a change of `ws-auth` can reach them) and the page serving requests."""

    open: set[web.WebSocketResponse] = field(default_factory=set)
    closing: set[asyncio.Task[bool]] = field(default_factory=set)
    serving: tuple[web.WebSocketResponse, RelayChannel] | None = None

    def _close_later(self, ws: web.WebSocketResponse, code: int, message: bytes) -> None:
        task = asyncio.ensure_future(ws.close(code=code, message=message))
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    def on_swap(self, old: Runtime, new: Runtime) -> None:
        """Runtime swap listener: false → true closes every session admitted without a key."""
        if old.config.ws_auth or not new.config.ws_auth or not self.open:
            return
        log.info("ws-auth enabled: closing %d /v1/ws session(s)", len(self.open))
        for ws in list(self.open):
            self._close_later(ws, WSCloseCode.POLICY_VIOLATION, b"ws-auth enabled")

    def serve(self, holder: RuntimeHolder, ws: web.WebSocketResponse, channel: RelayChannel) -> None:
        """Make `channel` the AI Studio credential; a page already serving is replaced (and closed)."""
        previous = self.serving
        self.serving = (ws, channel)
        if previous is not None:
            old_ws, old_channel = previous
            old_channel.close("replaced by a new AI Studio relay connection")
            self._close_later(old_ws, WSCloseCode.GOING_AWAY, b"replaced by a new connection")
        executor = AIStudioExecutor(channel)

        def build(config: Config) -> Credential:
            return runtime_credential(channel.name, PROVIDER, OWNER, executor, config)

        holder.add_runtime_credential(PROVIDER, build)
        log.info("AI Studio relay %s connected", channel.name)

    def leave(self, holder: RuntimeHolder, ws: web.WebSocketResponse, channel: RelayChannel) -> None:
        """The page disconnected: its credential leaves routing, its waiting requests fail."""
        channel.close("the AI Studio relay disconnected")
        if self.serving is not None and self.serving[0] is ws:
            self.serving = None
            holder.remove_runtime_credential(PROVIDER)
            log.info("AI Studio relay %s disconnected", channel.name)

    async def close_on_shutdown(self, _app: web.Application) -> None:
        """`on_shutdown`: idle sockets would otherwise hold graceful shutdown for its whole grace."""
        for ws in list(self.open):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


RELAY_SESSIONS = web.AppKey("relay_sessions", RelaySessions)


async def relay_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    sessions = request.app[RELAY_SESSIONS]
    holder = request.app[SERVICES].holder
    channel = RelayChannel(ws.send_str)
    sessions.open.add(ws)
    sessions.serve(holder, ws, channel)
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                envelope = jsonio.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(envelope, dict):
                continue
            if envelope.get("type") == "ping":
                async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                    await ws.send_str(jsonio.dumps({"id": envelope.get("id"), "type": "pong"}).decode())
            else:
                channel.receive(envelope)
    finally:
        sessions.open.discard(ws)
        sessions.leave(holder, ws, channel)
    return ws
