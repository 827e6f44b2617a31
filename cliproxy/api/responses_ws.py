"""WebSocket mode of the Responses API: `GET /v1/responses` and `GET /backend-api/codex/responses`.

Codex CLI and `client.responses.connect()` open one socket and send `response.create` frames on it,
one response at a time; each answer is the same event sequence as the HTTP stream, one JSON event
per text frame (what Codex CLI and the openai SDK send and expect). The front door has already checked the client key
on the upgrade request. Each frame is rebuilt into a full request (`responses_chain`) and goes
through `dispatch.execute` like a POST, so failover, cooldowns, translation and usage are the
HTTP ones. A reader task keeps draining the socket while a response streams (so control frames
are answered at once) and queues request frames for one worker that serves them in order.
Errors that the client can recover from are in-band `error` events and the socket stays open.

When credentials of the model have an upstream WebSocket of their own (Codex or xAI with
`websockets: true`), the turn goes there instead (`routing/ws_attempt.py`), never over HTTP:
a warm-up is forwarded rather than answered here, and a turn continuing the upstream socket's
last response goes out as the client sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict, istr

from cliproxy import jsonio
from cliproxy.api.errors import dialect_error, routing_error_parts
from cliproxy.api.responses_chain import ChainMemory, FrameError, Plan
from cliproxy.routing.call import Call, Outcome
from cliproxy.routing.dispatch import SenderFactory
from cliproxy.routing.errors import RoutingError
from cliproxy.routing.recorder import UsageRecorder
from cliproxy.routing.ws_attempt import Turn, UpstreamLink, WsAttempt
from cliproxy.runtime import Runtime
from cliproxy.server.access import CLIENT, REQUEST_ID
from cliproxy.server.services import SERVICES
from cliproxy.translate import Dialect
from cliproxy.translate.errors import error_object
from cliproxy.translate.sse import SSEEvent, SSEParser
from cliproxy.upstream.base import WEBSOCKET

log = logging.getLogger(__name__)

DIALECT = Dialect.RESPONSES
HEARTBEAT_SECONDS = 30.0  # server pings keep idle sockets (and the NATs between) alive
MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # as for HTTP bodies; a bigger frame is closed with 1009
QUEUED_FRAMES = 16  # frames read ahead while a response streams; then the reader waits
CLOSE_REASON_BYTES = 123  # the most a WebSocket close reason may carry
TERMINAL_TYPES = frozenset({"response.completed", "response.done", "response.incomplete", "response.failed"})
REMEMBERED_TYPES = frozenset({"response.completed", "response.done", "response.incomplete"})
_TURN_STATE = istr("X-Codex-Turn-State")
_OPENAI_BETA = istr("OpenAI-Beta")
_ITEM_DONE = b'"response.output_item.done"'
_TERMINAL_MARKERS = (b'"response.completed"', b'"response.done"', b'"response.incomplete"', b'"response.failed"')
_TEXT = WSMsgType.TEXT


@dataclass
class ResponsesSockets:
    """Open Responses sockets, so shutdown can close them instead of waiting out its grace."""

    open: set[ResponsesSocket] = field(default_factory=set)

    async def close_on_shutdown(self, _app: web.Application) -> None:
        """`on_shutdown`: idle sockets close now (1001); a socket mid-response closes after it."""
        for sock in list(self.open):
            sock.draining = True
            if not sock.busy and sock.queue.empty():
                await sock.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def error_event(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The in-band error event: `status` makes Codex treat it as that HTTP status."""
    event: dict[str, Any] = {
        "type": "error",
        "status": status,
        "error": error_object(DIALECT, status, message, code=code, param=param)["error"],
    }
    if headers:
        event["headers"] = headers
    return event


def routing_error_event(exc: RoutingError) -> dict[str, Any]:
    """A routing failure as the in-band error event, with the error object an HTTP client would get."""
    status, body, headers = routing_error_parts(DIALECT, exc)
    try:
        parsed = jsonio.loads(body)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        text = error if isinstance(error, str) else body.decode("utf-8", "replace")
        error = error_object(DIALECT, status, text)["error"]
    event: dict[str, Any] = {"type": "error", "status": status, "error": error}
    if headers:
        event["headers"] = {k.lower(): v for k, v in headers.items()}
    return event


def upstream_headers(headers: CIMultiDict[str] | Any) -> CIMultiDict[str]:
    """The upgrade request's headers as an HTTP upstream may see them: without the WebSocket
    beta flag (`OpenAI-Beta: responses_websockets=…` would be wrong on a POST)."""
    copy: CIMultiDict[str] = CIMultiDict(headers)
    beta = copy.get(_OPENAI_BETA)
    if beta and "responses_websockets" in beta:
        rest = ",".join(p for p in beta.split(",") if "responses_websockets" not in p).strip()
        copy.popall(_OPENAI_BETA)
        if rest:
            copy[_OPENAI_BETA] = rest
    return copy


def prewarm_events(model: str) -> tuple[str, bytes, bytes]:
    """Codex's warm-up (`generate: false`) answered locally: created + completed, empty output."""
    response_id = f"resp_prewarm_{uuid.uuid4().hex}"
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": model,
        "output": [],
        "usage": None,
    }
    created = jsonio.dumps({"type": "response.created", "sequence_number": 0, "response": response})
    response["status"] = "completed"
    response["usage"] = {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }
    completed = jsonio.dumps({"type": "response.completed", "sequence_number": 1, "response": response})
    return response_id, created, completed


RESPONSES_SOCKETS = web.AppKey("responses_sockets", ResponsesSockets)


class _Collector:
    """What one streamed response leaves behind: its id, its output items, how it ended."""

    __slots__ = ("errored", "items", "output", "response_id", "terminal")

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.items: list[Any] = []  # from `response.output_item.done`, in order
        self.output: list[Any] | None = None  # from the terminal event
        self.terminal: str | None = None
        self.errored = False

    def see(self, ev: SSEEvent, data: bytes) -> bytes:
        """Note what matters in one event; returns the bytes to send (patched if needed)."""
        try:
            return self._see(ev, data)
        except ValueError:  # not JSON: nothing to learn from it, pass it on as it came
            return data

    def _see(self, ev: SSEEvent, data: bytes) -> bytes:
        if ev.event == "error" or data.startswith(b'{"type":"error"') or data.startswith(b'{"type": "error"'):
            self.errored = True
            return data
        if _ITEM_DONE in data:
            obj = jsonio.loads(data)
            if obj.get("type") == "response.output_item.done" and isinstance(obj.get("item"), dict):
                self.items.append(obj["item"])
            return data
        if any(marker in data for marker in _TERMINAL_MARKERS):
            obj = jsonio.loads(data)
            kind = obj.get("type")
            response = obj.get("response")
            if kind in TERMINAL_TYPES and isinstance(response, dict):
                self.terminal = kind
                if isinstance(response.get("id"), str):
                    self.response_id = response["id"]
                output = response.get("output")
                if not output and self.items:  # some upstreams only stream the items
                    response["output"] = output = list(self.items)
                    data = jsonio.dumps(obj)
                self.output = output if isinstance(output, list) else []
            elif kind == "error":
                self.errored = True
            return data
        if self.response_id is None and b'"response.created"' in data:
            obj = jsonio.loads(data)
            response = obj.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.response_id = response["id"]
        return data


class ResponsesSocket:
    """One client connection: a reader that queues frames and a worker that serves them in order."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.memory = ChainMemory()
        self.queue: asyncio.Queue[bytes | str] = asyncio.Queue(QUEUED_FRAMES)
        self.busy = False
        self.draining = False
        self.headers = upstream_headers(request.headers)
        self.link = UpstreamLink()  # the upstream's own socket, in WebSocket mode

    async def run(self) -> None:
        worker = asyncio.ensure_future(self.work())
        try:
            async for msg in self.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.queue.put(msg.data)
            if not worker.done():
                worker.cancel()  # the client is gone: stop the response it was waiting for
        finally:
            if not worker.done():
                worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await self.link.close()

    async def work(self) -> None:
        ws = self.ws
        while not ws.closed:
            data = await self.queue.get()
            self.busy = True
            try:
                await self.serve(data)
            except (ConnectionError, RuntimeError) as exc:  # the socket went away mid-send
                log.debug("responses websocket: client gone (%s)", type(exc).__name__)
                return
            except Exception:  # a bug must not leave the client waiting: 1011 makes it reconnect
                log.exception("responses websocket: frame handling failed")
                await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
                return
            finally:
                self.busy = False
            if self.draining and self.queue.empty():
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                return

    async def send(self, data: bytes) -> None:
        await self.ws.send_frame(data, _TEXT)

    async def send_event(self, event: dict[str, Any], stream_id: str | None = None) -> None:
        if stream_id is not None:
            event["stream_id"] = stream_id
        await self.send(jsonio.dumps(event))

    async def serve(self, data: bytes | str) -> None:
        """Answer one frame: in-band error, local warm-up, or one upstream response."""
        try:
            frame = jsonio.loads(data)
        except ValueError:
            await self.send_event(error_event(400, "websocket message is not valid JSON"))
            return
        if not isinstance(frame, dict):
            await self.send_event(error_event(400, "websocket message must be a JSON object"))
            return
        try:
            plan = self.memory.plan(frame)
        except FrameError as exc:
            stream_id = frame.get("stream_id") if isinstance(frame.get("stream_id"), str) else None
            await self.send_event(error_event(exc.status, exc.message, code=exc.code, param=exc.param), stream_id)
            return
        body = plan.body
        model: str = body["model"]
        services = self.request.app[SERVICES]
        runtime = services.holder.current
        bridged = runtime.catalog.serves(WEBSOCKET) and runtime.catalog.resolve_for(model, WEBSOCKET)[0] is not None
        if not plan.generate and not bridged:
            await self.prewarm(plan)
            return
        request = self.request
        call = Call(
            DIALECT,
            model,
            body,
            jsonio.dumps(body),
            True,
            request[CLIENT],
            self.headers,
            request.path,
            request_id=request.get(REQUEST_ID, ""),
            client_ip=request.remote or "",
        )
        try:
            if bridged:
                outcome = await services.dispatcher.execute(runtime, call, self.bridge(plan), route_by=WEBSOCKET)
            else:
                outcome = await services.dispatcher.execute(runtime, call)
        except RoutingError as exc:
            event = routing_error_event(exc)
            error = event["error"]
            if exc.status == 413 and error.get("code") == "message_too_big":
                reason = str(error.get("message") or "message too big").encode()[:CLOSE_REASON_BYTES]
                await self.ws.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=reason)
                return
            await self.send_event(event, plan.stream_id)
            return
        await self.relay(outcome, plan)

    def bridge(self, plan: Plan) -> SenderFactory:
        """The attempts of one turn over the upstream's own WebSocket (a `SenderFactory`)."""
        turn = Turn(plan.body, plan.frame or plan.body, plan.previous, plan.generate)
        sessions = self.request.app[SERVICES].upstreams
        headers = self.request.headers

        def attempts(runtime: Runtime, call: Call, rec: UsageRecorder) -> WsAttempt:
            return WsAttempt(runtime, call, rec, link=self.link, turn=turn, sessions=sessions, client_headers=headers)

        return attempts

    async def prewarm(self, plan: Plan) -> None:
        response_id, created, completed = prewarm_events(plan.body["model"])
        if plan.stream_id is None:
            await self.send(created)
            await self.send(completed)
        else:
            for raw in (created, completed):
                await self.send_event(jsonio.loads(raw), plan.stream_id)
        self.memory.remember(response_id, plan, [])

    async def relay(self, outcome: Outcome, plan: Plan) -> None:
        """Each upstream SSE event's data as one text frame, in order; remember the result."""
        assert outcome.events is not None
        parser = SSEParser()
        seen = _Collector()
        stream_id = plan.stream_id
        try:
            async for chunk in outcome.events:
                for ev in parser.feed(chunk):
                    await self.forward(ev, seen, stream_id)
            for ev in parser.flush():
                await self.forward(ev, seen, stream_id)
        finally:
            await outcome.aclose()
        if seen.terminal is None and not seen.errored:
            message = "upstream stream ended before response.completed"
            await self.send_event(error_event(502, message, code="stream_incomplete"), stream_id)
            return
        if seen.terminal in REMEMBERED_TYPES and seen.response_id is not None:
            self.memory.remember(seen.response_id, plan, seen.output if seen.output is not None else seen.items)

    async def forward(self, ev: SSEEvent, seen: _Collector, stream_id: str | None) -> None:
        data = ev.data
        if not data or data == b"[DONE]":
            return
        data = seen.see(ev, data)
        if stream_id is not None:
            obj = jsonio.loads(data)
            obj["stream_id"] = stream_id
            data = jsonio.dumps(obj)
        await self.send(data)


async def responses_socket(request: web.Request) -> web.StreamResponse:
    """`GET /v1/responses`: upgrade and serve frames until the client or the server closes."""
    headers = {}
    turn_state = request.headers.get(_TURN_STATE)
    if turn_state:
        headers[_TURN_STATE] = turn_state  # Codex pins a turn to one backend with it
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES, compress=True)
    if not ws.can_prepare(request).ok:
        return dialect_error(
            DIALECT,
            426,
            "GET on this path is the Responses WebSocket mode: send a WebSocket upgrade, or POST for HTTP",
            headers={"Upgrade": "websocket"},
        )
    ws.headers.update(headers)
    await ws.prepare(request)
    sockets = request.app[RESPONSES_SOCKETS]
    sock = ResponsesSocket(request, ws)
    sockets.open.add(sock)
    try:
        await sock.run()
    finally:
        sockets.open.discard(sock)
    return ws
