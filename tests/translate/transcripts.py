"""Recorded upstream traffic (tests/fixtures) as SSE events and JSON bodies, per dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.sse import SSEEvent, SSEParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

STREAM_FILES = {
    (Dialect.CHAT, "text"): "openai_chat_stream.txt",
    (Dialect.CHAT, "tool"): "openai_chat_stream_tool.txt",
    (Dialect.RESPONSES, "text"): "openai_responses_stream.txt",
    (Dialect.RESPONSES, "tool"): "openai_responses_stream_tool.txt",
    (Dialect.CLAUDE, "text"): "anthropic_stream.txt",
    (Dialect.CLAUDE, "tool"): "anthropic_stream_tool.txt",
    (Dialect.GEMINI, "text"): "gemini_stream.txt",
}


def http_body(raw: bytes) -> bytes:
    """The body of a recorded HTTP/1.1 response (headers end at the first blank line)."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    return raw.partition(sep)[2]


def gemini_tool_stream() -> bytes:
    """Gemini has no recorded tool stream: the recorded tool answer, as the one SSE chunk Google sends."""
    return b"data: " + http_body((FIXTURES / "wire" / "gemini_generate_tool.txt").read_bytes()) + b"\r\n\r\n"


def stream_bytes(dialect: Dialect, case: str) -> bytes:
    if (dialect, case) == (Dialect.GEMINI, "tool"):
        return gemini_tool_stream()
    return http_body((FIXTURES / "wire" / STREAM_FILES[(dialect, case)]).read_bytes())


def stream_events(dialect: Dialect, case: str) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(stream_bytes(dialect, case)) + parser.flush()


def nonstream_body(dialect: Dialect, case: str) -> dict[str, Any]:
    data: dict[str, Any] = jsonio.loads((FIXTURES / "nonstream" / f"{dialect.value}_{case}.json").read_bytes())
    return data


def parse_sse(data: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(data) + parser.flush()
