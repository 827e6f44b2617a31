"""A raw-socket upstream for fault tests: each request is answered by a script that writes exact bytes.

The aiohttp-based fakes can only send well-formed HTTP. This one reads a request (head and
Content-Length body) and hands the connection to the test's `Script`, which may answer with any
bytes, stall, stream slowly, or hang up. Every request it read is kept, so a test can count how many
times the upstream really received one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.upstreams import (
    CHAT_COMPLETION,
    CLAUDE_MESSAGE,
    GEMINI_RESPONSE,
    RESPONSE,
    events_of,
    wire_body,
)


@dataclass
class RawRequest:
    head: bytes
    body: bytes
    reader: asyncio.StreamReader | None = field(default=None, repr=False)

    async def hold(self, seconds: float) -> None:
        """Stay silent for `seconds`, or until the proxy hangs up (a stalled upstream sees the close)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            if self.reader is not None and self.reader.at_eof():
                return
            await asyncio.sleep(0.02)

    @property
    def path(self) -> str:
        return self.head.split(b" ", 2)[1].decode()

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode()
        return None

    def headers(self, name: str) -> list[str]:
        return [
            line.partition(b":")[2].strip().decode()
            for line in self.head.split(b"\r\n")[1:]
            if line.partition(b":")[0].strip().lower() == name.lower().encode()
        ]

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Script = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawUpstream:
    """Serves every connection with `script` (keep-alive: one request after another until it returns
    False-ish by closing). Collects requests; counts connections."""

    script: Script
    requests: list[RawRequest] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> RawUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = RawRequest(head, await reader.readexactly(length), reader)
                self.requests.append(request)
                await self.script(request, writer)
                if writer.is_closing():
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self.closed.set()


def http_answer(
    body: bytes, *, status: str = "200 OK", content_type: str = "application/json", extra: str = ""
) -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length (keep-alive)."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# A good answer of each dialect, whole and as the events of a stream.
WHOLE = {
    "chat": json.dumps(CHAT_COMPLETION).encode(),
    "responses": json.dumps(RESPONSE).encode(),
    "claude": CLAUDE_MESSAGE if isinstance(CLAUDE_MESSAGE, bytes) else json.dumps(CLAUDE_MESSAGE).encode(),
    "gemini": json.dumps(GEMINI_RESPONSE).encode(),
}
STREAM_EVENTS = {
    "chat": events_of(wire_body("openai_chat_stream.txt")),
    "responses": events_of(wire_body("openai_responses_stream.txt")),
    "claude": events_of(wire_body("anthropic_stream.txt")),
    "gemini": events_of(wire_body("gemini_stream.txt")),
}


def dialect_of(request: RawRequest) -> str:
    path = request.path
    if "/messages" in path:
        return "claude"
    if "generateContent" in path or "streamGenerateContent" in path:
        return "gemini"
    if "/responses" in path:
        return "responses"
    return "chat"


def is_stream(request: RawRequest) -> bool:
    body = request.json
    return "streamGenerateContent" in request.path or (isinstance(body, dict) and body.get("stream") is True)


async def good_answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    """What a healthy upstream of the request's dialect answers."""
    dialect = dialect_of(request)
    if is_stream(request):
        writer.write(SSE_HEAD + b"".join(chunk(e) for e in STREAM_EVENTS[dialect]) + b"0\r\n\r\n")
    else:
        writer.write(http_answer(WHOLE[dialect]))
    await writer.drain()
