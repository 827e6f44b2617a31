"""One attempt over an upstream's own Responses WebSocket (Codex and xAI credentials with `websockets`).

A client socket in WebSocket mode keeps one `UpstreamLink`: the upstream socket it opened, for
which credential and URL, and the last response that socket produced. A turn that continues that
very response goes out as the client sent it (`previous_response_id` and the new input only); any
other turn (another credential, a new socket) goes out whole, the remembered transcript in
`input`, as on the HTTP path. As there, commit late: the attempt fails over (the retry loop moves
to the next credential) until the upstream's first event of the response is known, and a refused
handshake, an `error` event first, a closed socket or a bound of `upstream-timeouts` run out is a
`Failure` classified like an HTTP answer (a 401 refreshes the token once). After the first event
the events are relayed as they come, framed as SSE `data:` for the client socket's relay, up to
the response's terminal event. An upstream that answers a warm-up (`generate: false`) with
`response.created` alone (xAI) gets its `response.completed` made here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from cliproxy import jsonio
from cliproxy.routing.attempt import sent_secrets
from cliproxy.routing.call import Call, Outcome
from cliproxy.routing.catalog import Candidate
from cliproxy.routing.credentials import Credential
from cliproxy.routing.failures import Failure, classify, masked, network_failure, status_of_stream_error
from cliproxy.routing.recorder import UsageRecorder
from cliproxy.routing.relay import NETWORK_ERRORS, broken_status
from cliproxy.runtime import Runtime
from cliproxy.translate import Dialect
from cliproxy.translate.usage import usage_of_event
from cliproxy.upstream.clients import Sessions, Timeouts
from cliproxy.upstream.websocket import HandshakeRefused, UpstreamSocket

log = logging.getLogger(__name__)

DIALECT = Dialect.RESPONSES
SSE_CT = "text/event-stream"
TERMINAL = frozenset({"response.completed", "response.done", "response.incomplete", "response.failed", "error"})
ZERO_USAGE = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


class UpstreamLink:
    """The upstream socket of one client socket, reused while the credential and URL stay the same."""

    __slots__ = ("cred_id", "last_response_id", "socket")

    def __init__(self) -> None:
        self.socket: UpstreamSocket | None = None
        self.cred_id = ""
        self.last_response_id: str | None = None

    def open_for(self, cred_id: str, url: str) -> UpstreamSocket | None:
        socket = self.socket
        if socket is not None and not socket.closed and self.cred_id == cred_id and socket.url == url:
            return socket
        return None

    def attach(self, cred_id: str, socket: UpstreamSocket) -> None:
        self.socket, self.cred_id, self.last_response_id = socket, cred_id, None

    async def close(self) -> None:
        socket, self.socket, self.last_response_id = self.socket, None, None
        if socket is not None:
            await socket.close()


@dataclass(slots=True)
class Turn:
    """One client frame, both ways it can go upstream."""

    body: dict[str, Any]  # whole: the transcript in `input`, no `previous_response_id`
    frame: dict[str, Any]  # as the client sent it (incremental, with `previous_response_id`)
    previous: str | None
    generate: bool


def _kind(data: bytes) -> str | None:
    try:
        event = jsonio.loads(data)
    except ValueError:
        return None
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else None


def _error_failure(cred: Credential, data: bytes) -> Failure:
    """An `error` event the upstream sent first, as the failure of an HTTP answer with its status."""
    try:
        event = jsonio.loads(data)
    except ValueError:
        event = None
    status = event.get("status") if isinstance(event, dict) else None
    if not (isinstance(status, int) and 400 <= status < 600):
        status = status_of_stream_error(DIALECT, data)[0]
    error = event.get("error") if isinstance(event, dict) else None
    body = jsonio.dumps({"error": error}) if isinstance(error, dict) else data
    status = cred.executor.upstream_status(status, body)
    return classify(status, body, {}, DIALECT)


class WsAttempt:
    """A `Sender` for the retry loop: one attempt per candidate over its upstream WebSocket."""

    __slots__ = ("call", "client_headers", "link", "rec", "runtime", "secrets", "sessions", "turn")

    def __init__(
        self,
        runtime: Runtime,
        call: Call,
        rec: UsageRecorder,
        *,
        link: UpstreamLink,
        turn: Turn,
        sessions: Sessions,
        client_headers: Mapping[str, str],
    ) -> None:
        self.runtime, self.call, self.rec = runtime, call, rec
        self.link, self.turn, self.sessions = link, turn, sessions
        self.client_headers = client_headers
        self.secrets: tuple[str, ...] = ()

    def _frame(self, cred: Credential, model: str, chained: bool) -> dict[str, Any]:
        turn = self.turn
        body = dict(turn.frame if chained else turn.body)
        body.pop("type", None)
        body["model"] = model
        if not chained:
            body.pop("previous_response_id", None)
        frame = cred.executor.websocket_frame(body, chained=chained)
        if not turn.generate:
            frame["generate"] = False
        return frame

    async def _connect(self, cred: Credential, url: str, timeouts: Timeouts) -> UpstreamSocket | Failure:
        executor = cred.executor
        refreshed = False
        while True:
            headers = {**cred.headers, **executor.websocket_headers(self.client_headers)}
            headers.pop("Content-Type", None)
            if executor.dynamic_auth:
                try:
                    auth = await executor.fresh_auth(cred, force_refresh=refreshed)
                except Exception as exc:
                    log.warning("upstream %s: no usable token: %s", cred.id, exc)
                    return Failure(401 if refreshed else 503, b"", DIALECT, message=f"credential unavailable: {exc}")
                headers = executor.combine_headers(headers, auth)
            self.secrets = sent_secrets(
                cred.api_key, {k: v for k, v in headers.items() if k.lower() == "authorization"}
            )
            try:
                socket = await UpstreamSocket.open(
                    self.sessions, url, headers, proxy_url=cred.proxy_url, timeouts=timeouts
                )
            except HandshakeRefused as exc:
                status = executor.upstream_status(exc.status, b"")
                if status == 401 and not refreshed and executor.can_refresh(cred):
                    refreshed = True
                    continue
                return masked(classify(status, b"", exc.headers, DIALECT), self.secrets)
            except NETWORK_ERRORS as exc:
                log.warning("upstream %s WebSocket unreachable: %s", cred.id, type(exc).__name__)
                return network_failure(DIALECT, "upstream WebSocket failed", exc)
            await self.link.close()
            self.link.attach(cred.id, socket)
            return socket

    async def send(self, cand: Candidate, upstream_model: str) -> Outcome | Failure:
        cred = cand.credential
        self.rec.attempt(cand, upstream_model)
        timeouts = cred.timeouts or self.runtime.upstream_timeouts
        url = cred.executor.websocket_url(cred)
        link = self.link
        socket = link.open_for(cred.id, url)
        chained = socket is not None and self.turn.previous is not None and link.last_response_id == self.turn.previous
        while True:
            reused = socket is not None
            if socket is None:
                opened = await self._connect(cred, url, timeouts)
                if isinstance(opened, Failure):
                    return opened
                socket = opened
            try:
                await socket.send(self._frame(cred, upstream_model, chained))
                first = await socket.receive(timeouts.first_byte)
                break
            except NETWORK_ERRORS as exc:
                await link.close()
                if not reused:
                    return network_failure(DIALECT, "upstream WebSocket failed", exc)
                # An idle socket the upstream closed meanwhile: a new one, which knows no conversation.
                log.info("upstream %s WebSocket was gone (%s); opening a new one", cred.id, type(exc).__name__)
                socket, chained = None, False
        if _kind(first) == "error":
            await link.close()
            return masked(_error_failure(cred, first), self.secrets)
        self.rec.first_byte()
        events = self._events(socket, first, cred.executor.synthesizes_warmup and not self.turn.generate, timeouts)
        return Outcome(200, {}, SSE_CT, None, events, cred.id, upstream_model, events.aclose)

    async def _events(
        self, socket: UpstreamSocket, first: bytes, synthesize: bool, timeouts: Timeouts
    ) -> AsyncGenerator[bytes, None]:
        """The upstream's events of this response, SSE-framed, up to its terminal event."""
        rec, link = self.rec, self.link
        status = 200
        data = first
        try:
            while True:
                try:
                    event = jsonio.loads(data)
                except ValueError:
                    event = {}
                kind = event.get("type") if isinstance(event, dict) else None
                response = event.get("response") if isinstance(event, dict) else None
                if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                    rec.add_tokens(usage_of_event(DIALECT, event))
                yield b"data: " + data + b"\n\n"
                if kind in TERMINAL:
                    if isinstance(response, dict) and isinstance(response.get("id"), str) and kind != "error":
                        link.last_response_id = response["id"]
                    return
                if synthesize and kind == "response.created" and isinstance(response, dict):
                    yield b"data: " + jsonio.dumps(_completed(event, response)) + b"\n\n"
                    if isinstance(response.get("id"), str):
                        link.last_response_id = response["id"]
                    return
                data = await socket.receive(timeouts.idle)
        except NETWORK_ERRORS as exc:
            status = broken_status(exc)
            await link.close()
            broke = {"type": "server_error", "code": "stream_broken", "message": f"upstream WebSocket broke: {exc}"}
            error = {"type": "error", "status": status, "error": broke}
            yield b"data: " + jsonio.dumps(error) + b"\n\n"
        except BaseException:  # the client went away mid-response: this socket is mid-answer, useless
            status = 499
            await link.close()
            raise
        finally:
            rec.done(status)


def _completed(created: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The `response.completed` a warm-up gets where the upstream only said `response.created`."""
    done = {**response, "status": "completed", "output": []}
    if not isinstance(done.get("usage"), dict):
        done["usage"] = dict(ZERO_USAGE)
    sequence = created.get("sequence_number")
    event: dict[str, Any] = {"type": "response.completed", "response": done}
    if isinstance(sequence, int):
        event["sequence_number"] = sequence + 1
    return event
