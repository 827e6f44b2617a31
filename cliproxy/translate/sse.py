"""Incremental Server-Sent-Events parsing and framing.

Upstreams deliver SSE in arbitrary chunks; `SSEParser.feed` returns only complete events and keeps
the tail. Both `\\n\\n` and `\\r\\n\\r\\n` separators are accepted (Google uses CRLF).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    """One SSE event: the `event:` name (None when absent) and the joined `data:` payload."""

    event: str | None
    data: bytes


class SSEParser:
    """Feed raw bytes, get complete events. Comment lines (`: ping`) are skipped."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = buf.split(b"\n\n")
        self._buf = parts.pop()
        events: list[SSEEvent] = []
        for block in parts:
            ev = _parse_block(block)
            if ev is not None:
                events.append(ev)
        return events

    def flush(self) -> list[SSEEvent]:
        """Events left when the body ends without a final blank line."""
        block, self._buf = self._buf, b""
        ev = _parse_block(block.strip(b"\n"))
        return [ev] if ev is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    if not block:
        return None
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 58:  # b":" comment / keep-alive
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data and event is None:
        return None
    return SSEEvent(event, b"\n".join(data))


def frame(data: bytes, event: str | None = None) -> bytes:
    """Frame one event: `event: X\\ndata: …\\n\\n`, or data-only when `event` is None."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"
