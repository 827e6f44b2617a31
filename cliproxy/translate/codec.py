"""The shape every dialect codec has, so `convert` can pick one by `Dialect` without knowing any wire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cliproxy.translate.ir import Reasoning, Request, Response, StreamEvent, Usage
from cliproxy.translate.sse import SSEEvent


class StreamDecoder(Protocol):
    """Upstream SSE events of one dialect → IR stream events."""

    def decode(self, event: SSEEvent) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]:
        """At upstream EOF: whatever the wire left implicit (open blocks, the finish)."""
        ...


class StreamEncoder(Protocol):
    """IR stream events → client SSE bytes of one dialect."""

    def encode(self, event: StreamEvent) -> bytes: ...

    def finish(self) -> bytes:
        """Closing frames if the stream has not finished yet."""
        ...

    def error(self, status: int, message: str) -> bytes:
        """A mid-stream error frame; the stream is over afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class Codec:
    decode_request: Callable[[dict[str, Any]], Request]
    encode_request: Callable[[Request], dict[str, Any]]
    decode_response: Callable[[dict[str, Any]], Response]
    encode_response: Callable[[Response], dict[str, Any]]
    stream_decoder: Callable[[], StreamDecoder]
    stream_encoder: Callable[[str], StreamEncoder]  # the client-visible model
    usage_from_response: Callable[[dict[str, Any]], Usage | None]
    usage_from_event: Callable[[dict[str, Any]], Usage | None]
    set_reasoning: Callable[[dict[str, Any], Reasoning, str], None]  # in place, for same-dialect bodies


def as_int(value: Any) -> int:
    """Token counts arrive as int, float or null depending on the provider."""
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0
