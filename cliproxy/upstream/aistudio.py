"""The AI Studio relay: Gemini requests carried over a browser's WebSocket (`/v1/ws`).

A browser page (a userscript in AI Studio) connects to `/v1/ws` and makes the Gemini calls itself,
signed in as its user: cliproxy sends it each request as an envelope and it answers with the
upstream's response. The envelope is CLIProxyAPI's, so its userscripts work unchanged:
`{"id", "type", "payload"}`; out goes `http_request` (`method`, `url`, `headers` as lists,
`body` as text, `sent_at`); back come `http_response` (`status`, `headers`, `body`), or
`stream_start` (`status`, `headers`), `stream_chunk` (`data`: raw SSE text) … `stream_end`, or
`error` (`error`, `status`). An answer for an unknown id is ignored. No API key goes out: the page
authenticates to Google itself.

`RelayChannel` is one connected page: the socket handler (`api/ws_relay.py`) feeds it every frame
and it turns each request's frames into an `UpstreamResponse` for routing; `AIStudioExecutor` is
the executor of the runtime credential the connection becomes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.upstream.base import Executor, Outgoing, UpstreamCredential
from cliproxy.upstream.clients import Sessions, UpstreamResponse
from cliproxy.upstream.gemini import DEFAULT_BASE, gemini_method
from cliproxy.upstream.http1 import UpstreamTimeout
from cliproxy.upstream.relayed import FedResponse, whole_response

log = logging.getLogger(__name__)

PROVIDER = "aistudio"
OWNER = "google"
WRITE_TIMEOUT_SECONDS = 10.0
ID_CHARS = string.ascii_lowercase + string.digits
# Generation settings the page's own client refuses (as CLIProxyAPI leaves them out).
DROPPED_CONFIG = ("maxOutputTokens", "responseMimeType", "responseJsonSchema")


def relay_id() -> str:
    """`aistudio-` and 16 random characters of [a-z0-9], as CLIProxyAPI names a connection."""
    return PROVIDER + "-" + "".join(secrets.choice(ID_CHARS) for _ in range(16))


class RelayGone(ConnectionError):
    """The page disconnected (or was replaced) while a request was waiting on it."""


class _Pending:
    """One request on the channel: the first answer frame, then the body as it streams."""

    __slots__ = ("first", "idle", "response")

    def __init__(self, idle: float) -> None:
        self.first: asyncio.Future[FedResponse] = asyncio.get_running_loop().create_future()
        self.response: FedResponse | None = None
        self.idle = idle  # the longest silence between two pieces of its body


def _headers(value: Any) -> dict[str, str]:
    """Answer headers as the page sends them: name → string, or name → list of strings."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, list):
                item = ", ".join(str(v) for v in item)
            if isinstance(item, str | int | float):
                out[str(name)] = str(item)
    return out


def _status(payload: Mapping[str, Any], default: int = 200) -> int:
    status = payload.get("status")
    return status if isinstance(status, int) and 100 <= status < 600 else default


class RelayChannel:
    """One connected page: sends request envelopes, routes answer frames to their requests."""

    def __init__(self, send: Callable[[str], Awaitable[None]], name: str | None = None) -> None:
        self.name = name or relay_id()
        self._send = send
        self._pending: dict[str, _Pending] = {}
        self._closed: BaseException | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def request(self, out: Outgoing) -> UpstreamResponse:
        """Send one request and return its answer once its first frame arrived (bounded by
        `first_byte`; the body's pieces by `idle`)."""
        if self._closed is not None:
            raise RelayGone(str(self._closed))
        request_id = str(uuid.uuid4())
        envelope = {
            "id": request_id,
            "type": "http_request",
            "payload": {
                "method": "POST",
                "url": out.url,
                "headers": {name: [value] for name, value in out.headers.items()},
                "body": out.payload.decode("utf-8", "replace"),
                "sent_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            },
        }
        pending = self._pending[request_id] = _Pending(out.timeouts.idle)
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                await self._send(jsonio.dumps(envelope).decode())
            async with asyncio.timeout(out.timeouts.first_byte):
                response = await pending.first
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise UpstreamTimeout("the AI Studio relay did not answer in time") from None
        except BaseException:
            self._pending.pop(request_id, None)
            raise
        response.on_close = functools.partial(self._forget, request_id)
        return response

    def _forget(self, request_id: str) -> None:
        """Routing gave the answer up (the client went away): later frames for it are ignored."""
        self._pending.pop(request_id, None)

    def receive(self, envelope: Mapping[str, Any]) -> None:
        """One frame from the page (pings are answered by the socket handler)."""
        request_id = envelope.get("id")
        if not isinstance(request_id, str):
            return
        pending = self._pending.get(request_id)
        if pending is None:
            return  # an answer for a request that is gone (or never was)
        kind = envelope.get("type")
        idle = pending.idle
        payload = envelope.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        if kind == "http_response":
            self._finish(request_id, whole_response(_status(payload), _headers(payload.get("headers")),
                                                    str(payload.get("body") or "").encode()))  # fmt: skip
        elif kind == "stream_start":
            if pending.response is None:
                pending.response = FedResponse(_status(payload), _headers(payload.get("headers")), idle)
                self._answer(pending, pending.response)
        elif kind == "stream_chunk":
            if pending.response is None:  # a chunk without its start: a 200 stream all the same
                pending.response = FedResponse(200, {"Content-Type": "text/event-stream"}, idle)
                self._answer(pending, pending.response)
            pending.response.content.feed(str(payload.get("data") or "").encode())
        elif kind == "stream_end":
            if pending.response is None:
                pending.response = FedResponse(200, {"Content-Type": "text/event-stream"}, idle)
                self._answer(pending, pending.response)
            pending.response.content.end()
            self._pending.pop(request_id, None)
        elif kind == "error":
            message = str(payload.get("error") or "AI Studio relay error")
            status = _status(payload, 502)
            if pending.response is not None:  # mid-stream: the stream breaks off
                pending.response.content.end(RelayGone(message))
                self._pending.pop(request_id, None)
            else:
                body = jsonio.dumps({"error": {"code": status, "message": message, "status": "UNAVAILABLE"}})
                self._finish(request_id, whole_response(status, {"Content-Type": "application/json"}, body))

    def _answer(self, pending: _Pending, response: FedResponse) -> None:
        if not pending.first.done():
            pending.first.set_result(response)

    def _finish(self, request_id: str, response: FedResponse) -> None:
        pending = self._pending.pop(request_id)
        self._answer(pending, response)

    def close(self, reason: str) -> None:
        """The page is gone: every waiting request fails with `reason`."""
        self._closed = RelayGone(reason)
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.first.done():
                item.first.set_exception(RelayGone(reason))
            elif item.response is not None:
                item.response.content.end(RelayGone(reason))


class AIStudioExecutor(Executor):
    """Gemini through a connected AI Studio page: the request goes over its socket, unsigned."""

    kind: ClassVar[str] = PROVIDER
    dialect: ClassVar[Dialect] = Dialect.GEMINI
    transport: ClassVar[bool] = True

    def __init__(self, channel: RelayChannel) -> None:
        self.channel = channel

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return f"{DEFAULT_BASE}/v1beta/models/{model}{gemini_method(stream, action)}"

    async def send(self, cred: UpstreamCredential, out: Outgoing, sessions: Sessions) -> UpstreamResponse:
        body = jsonio.loads(out.payload)
        config = body.get("generationConfig") if isinstance(body, dict) else None
        changed = isinstance(body, dict) and body.pop("session_id", None) is not None
        if isinstance(config, dict):
            for key in DROPPED_CONFIG:
                changed = config.pop(key, None) is not None or changed
        if changed:
            out.payload = jsonio.dumps(body)
        out.headers = {k: v for k, v in out.headers.items() if k.lower() != "authorization"}
        return await self.channel.request(out)
