"""A fake of the upstreams' own Responses WebSockets: OpenAI/Codex (`/v1/responses`, the ChatGPT
backend's `/backend-api/codex/responses`) and xAI (`/xai/v1/responses`).

Strict where the real ones are: the handshake needs a known Bearer token (and, for OpenAI and
Codex, the `responses_websockets` beta flag); each frame must be a `response.create` with a model
and without `stream`; a `previous_response_id` must name a response of this very connection (the
upstream keeps the conversation per socket), else an `error` event `previous_response_not_found`.
A warm-up (`generate: false`) is answered with `response.created` and `response.completed` by
OpenAI and with `response.created` alone by xAI. Other responses replay the recorded Responses
stream (the tool-call one while a tool loop is open), one JSON event per text frame, with a fresh
response id. Tests can refuse handshakes, send an `error` event first, or close a socket.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.upstreams import ends_with_tool_result, events_of, wire_body


@dataclass
class Frame:
    """One frame the upstream received, with the connection it came on."""

    connection: int
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeUpstreamSockets:
    tokens: set[str] = field(default_factory=lambda: {"sk-codex-ws-a", "sk-codex-ws-b", "xai-ws-key"})
    frames: list[Frame] = field(default_factory=list)
    handshakes: list[dict[str, str]] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)  # token -> handshake status
    error_first: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> the error event
    close_after_turn: bool = False
    tool_loop: bool = True
    http_posts: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _connections: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/v1/responses", "/backend-api/codex/responses", "/xai/v1/responses"):
            app.router.add_get(path, self.socket)
            app.router.add_post(path, self.http)
        return app

    async def http(self, request: web.Request) -> web.Response:
        self.http_posts += 1  # WebSocket mode must never fall back to HTTP
        return web.json_response({"error": {"message": "no HTTP here"}}, status=500)

    def connections(self) -> set[int]:
        return {f.connection for f in self.frames}

    async def socket(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        xai = request.path.startswith("/xai/")
        self.handshakes.append(dict(request.headers))
        if token not in self.tokens:
            return web.json_response({"error": {"message": "Incorrect API key provided"}}, status=401)
        if token in self.refuse:
            status = self.refuse[token]
            return web.json_response({"error": {"message": f"refused {status}", "type": "rate_limit"}}, status=status)
        if not xai and "responses_websockets=" not in request.headers.get("OpenAI-Beta", ""):
            return web.json_response({"error": {"message": "missing the websocket beta flag"}}, status=400)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = next(self._connections)
        produced: dict[str, Any] = {}  # response id -> the tools it was given (kept for chained turns)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            body = json.loads(msg.data)
            self.frames.append(Frame(connection, request.path, body, dict(request.headers)))
            if token in self.error_first:
                await ws.send_json(self.error_first[token])
                continue
            problem = self._problem(body, produced)
            if problem is not None:
                await ws.send_json(problem)
                continue
            await self._respond(ws, body, produced, xai)
            if self.close_after_turn:
                await ws.close()
        return ws

    def _problem(self, body: dict[str, Any], produced: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("type") != "response.create" or not body.get("model") or "stream" in body:
            return _error(400, "invalid_request_error", "bad response.create frame")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in produced:
            return _error(400, "previous_response_not_found", f"Previous response with id '{previous}' not found.")
        return None

    async def _respond(
        self, ws: web.WebSocketResponse, body: dict[str, Any], produced: dict[str, Any], xai: bool
    ) -> None:
        response_id = f"resp_ws{next(self._ids):04d}"
        tools = body.get("tools") or produced.get(body.get("previous_response_id") or "")
        produced[response_id] = tools
        if body.get("generate") is False:
            response = {"id": response_id, "object": "response", "status": "in_progress", "model": body["model"],
                        "output": []}  # fmt: skip
            await ws.send_json({"type": "response.created", "sequence_number": 0, "response": response})
            if not xai:
                done = {**response, "status": "completed", "usage": None}
                await ws.send_json({"type": "response.completed", "sequence_number": 1, "response": done})
            return
        use_tool = bool(tools) and self.tool_loop and not ends_with_tool_result("responses", body)
        source = wire_body("openai_responses_stream_tool.txt" if use_tool else "openai_responses_stream.txt")
        for event in events_of(source):
            data = json.loads(event.strip().split(b"data:", 1)[1])
            if isinstance(data.get("response"), dict):
                data["response"]["id"] = response_id
            await ws.send_str(json.dumps(data))


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "status": status, "error": {"type": "invalid_request_error", "code": code,
                                                          "message": message}}  # fmt: skip
