"""A fake OpenAI-compatible upstream fast enough never to be the bottleneck (raw asyncio + uvloop).

`POST .../chat/completions`: a fixed ~450 B chat.completion; with `"stream": true`, 20 SSE chunks, a
usage chunk when the body asks for it, then `data: [DONE]`. A model name containing `slow` paces the
chunks `--delay-ms` apart (a stand-in for real token pacing). Loopback only.

Usage: `python bench/harness/upstream.py --port 18000 [--delay-ms 10]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

import uvloop

MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')
STREAM = re.compile(rb'"stream"\s*:\s*true')
WORDS = ["Hello", " there", "!", " This", " is", " a", " fake", " upstream", " answer", " made", " of", " tokens"]


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


MESSAGE = {"role": "assistant", "content": "Hello there! This is a fake upstream answer.", "refusal": None}
USAGE = {"prompt_tokens": 19, "completion_tokens": 14, "total_tokens": 33}
BASE = {"id": "chatcmpl-fake0000", "created": 1764700000, "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp"}
COMPLETION = _dump(
    {**BASE, "object": "chat.completion", "choices": [{"index": 0, "message": MESSAGE, "finish_reason": "stop"}]}
    | {"usage": USAGE}
)
NONSTREAM = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(COMPLETION),
    COMPLETION,
)
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENTS = [
    _chunked(
        b"data: "
        + _dump(
            {
                **BASE,
                "object": "chat.completion.chunk",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": WORDS[i % len(WORDS)]},
                        "finish_reason": "stop" if i == 19 else None,
                    }
                ],
            }
        )
        + b"\n\n"
    )
    for i in range(20)
]
USAGE_EVENT = _chunked(
    b"data: " + _dump({**BASE, "object": "chat.completion.chunk", "choices": [], "usage": USAGE}) + b"\n\n"
)
DONE = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Upstream(asyncio.Protocol):
    delay = 0.01

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at > 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            self.answer(head.split(b" ", 2)[1], body)

    def answer(self, path: bytes, body: bytes) -> None:
        assert self.transport is not None
        if not path.split(b"?")[0].endswith(b"/chat/completions"):
            self.transport.write(NOT_FOUND)
        elif not STREAM.search(body):
            self.transport.write(NONSTREAM)
        else:
            usage = USAGE_EVENT if b"include_usage" in body else b""
            model = MODEL.search(body)
            if model and b"slow" in model.group(1):
                self.busy = True
                asyncio.get_running_loop().create_task(self.paced(usage))
            else:
                self.transport.write(STREAM_HEAD + b"".join(EVENTS) + usage + DONE)

    async def paced(self, usage: bytes) -> None:
        try:
            self.transport.write(STREAM_HEAD)  # type: ignore[union-attr]
            for event in EVENTS:
                await asyncio.sleep(self.delay)
                if self.transport is None:
                    return
                self.transport.write(event)
            self.transport.write(usage + DONE)
        finally:
            self.busy = False
            if self.buf and self.transport is not None:
                self.data_received(b"")


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    args = parser.parse_args()
    Upstream.delay = args.delay_ms / 1000
    uvloop.run(serve(args.port))
