"""The shape every dialect codec has, so callers can pick one by `Dialect` without knowing any wire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cliproxy.translate.ir import Reasoning, Request, Response, StreamEvent, Usage
from cliproxy.translate.sse import SSEEvent
from cliproxy.translate.tool_names import NameRule


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


class ErrorEncoder(Protocol):
    """A dialect's error envelope as a dict; `err_type`/`code` override what the status implies and
    `extra` adds keys next to the message (the cooldown error's `reset_seconds`, for instance)."""

    def __call__(
        self,
        status: int,
        message: str,
        *,
        err_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...


class ErrorFrameEncoder(Protocol):
    """One SSE frame reporting an error after the stream has started; nothing may follow it."""

    def __call__(
        self,
        status: int,
        message: str,
        *,
        err_type: str | None = None,
        code: str | None = None,
        sequence_number: int | None = None,
    ) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Codec:
    """Everything one dialect knows about its own wire.

    Usage: `usage_of` reads the dialect's usage object (found under `usage_field` in a whole answer),
    `usage_of_event` finds and reads the one a stream event carries. Both give IR `Usage`, so there is
    one parser per dialect for translation and usage records alike. `native_input_tokens` turns IR
    input back into the count the dialect's own wire states (Claude leaves cache reads and writes out).
    `tool_names` is the rule tool names must follow on this wire.
    """

    decode_request: Callable[[dict[str, Any]], Request]
    encode_request: Callable[[Request], dict[str, Any]]
    decode_response: Callable[[dict[str, Any]], Response]
    encode_response: Callable[[Response], dict[str, Any]]
    stream_decoder: Callable[[], StreamDecoder]
    stream_encoder: Callable[[str], StreamEncoder]  # the client-visible model
    set_reasoning: Callable[[dict[str, Any], Reasoning, str], None]  # in place, for same-dialect bodies
    usage_field: str
    usage_of: Callable[[Any], Usage | None]
    usage_of_event: Callable[[Any], Usage | None]
    native_input_tokens: Callable[[Usage], int]
    error_object: ErrorEncoder
    stream_error_frame: ErrorFrameEncoder
    tool_names: NameRule


def as_int(value: Any) -> int:
    """Token counts arrive as int, float or null depending on the provider."""
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def whole_prompt(usage: Usage) -> int:
    """`native_input_tokens` of the dialects whose input count is the whole prompt, as the IR's is."""
    return usage.input_tokens
