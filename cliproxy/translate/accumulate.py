"""IR stream events → one IR `Response`: how a stream becomes a non-stream answer (Codex always streams)."""

from __future__ import annotations

from cliproxy.translate import ir
from cliproxy.translate.ir import (
    ErrorEvent,
    Finish,
    Part,
    Response,
    StopReason,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
    UsageEvent,
)


class ResponseBuilder:
    """Collects deltas per block; `result()` joins them in block order."""

    __slots__ = ("_args", "_error", "_id", "_model", "_parts", "_stop", "_texts", "usage")

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._parts: dict[int, Part] = {}
        self._texts: dict[int, list[str]] = {}
        self._args: dict[int, list[str]] = {}
        self._stop: StopReason = "stop"
        self._error: ErrorEvent | None = None
        self.usage: Usage | None = None

    @property
    def error(self) -> ErrorEvent | None:
        return self._error

    def add(self, ev: StreamEvent) -> None:
        if isinstance(ev, TextDelta):
            if ev.index not in self._parts:
                self._parts[ev.index] = TextPart("")
                self._texts[ev.index] = []
            self._texts[ev.index].append(ev.text)
        elif isinstance(ev, ToolArgsDelta):
            if ev.index not in self._parts:
                self._parts[ev.index] = ToolCallPart(ir.new_id("call_"), "", "")
            self._args.setdefault(ev.index, []).append(ev.delta)
        elif isinstance(ev, ThinkingDelta):
            part = self._parts.get(ev.index)
            if not isinstance(part, ThinkingPart):
                part = self._parts[ev.index] = ThinkingPart("", family=ev.family, redacted=ev.redacted)
                self._texts[ev.index] = []
            self._texts[ev.index].append(ev.text)
            if ev.signature:
                part.signature = ev.signature
                part.family = ev.family
        elif isinstance(ev, ToolCallStart):
            self._parts[ev.index] = ToolCallPart(ev.id, ev.name, "", ev.signature, ev.family)
        elif isinstance(ev, StreamStart):
            self._id = ev.id or self._id
            self._model = ev.model or self._model
            if ev.usage is not None:
                self.usage = ev.usage
        elif isinstance(ev, UsageEvent):
            self.usage = ev.usage
        elif isinstance(ev, Finish):
            self._stop = ev.stop_reason
            if ev.usage is not None:
                self.usage = ev.usage
        elif isinstance(ev, ErrorEvent):
            self._error = ev

    def result(self) -> Response:
        parts: list[Part] = []
        for index in sorted(self._parts):
            part = self._parts[index]
            if isinstance(part, TextPart | ThinkingPart):
                part.text = "".join(self._texts.get(index, ()))
            elif isinstance(part, ToolCallPart):
                part.arguments = "".join(self._args.get(index, ())) or "{}"
            parts.append(part)
        return Response(self._id or ir.new_id(""), self._model, parts, self._stop, self.usage)
