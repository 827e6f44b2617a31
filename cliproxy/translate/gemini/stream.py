"""streamGenerateContent ⇄ IR: `data:`-only frames, each a whole GenerateContentResponse, no `[DONE]`."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.codec import as_int
from cliproxy.translate.gemini.errors import stream_error_frame
from cliproxy.translate.gemini.response import FINISH_IN, FINISH_OUT
from cliproxy.translate.gemini.usage import usage_of, usage_out
from cliproxy.translate.ir import (
    BlockStop,
    ErrorEvent,
    Finish,
    StopReason,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from cliproxy.translate.sse import SSEEvent


class GeminiStreamDecoder:
    """Gemini chunks → IR events. Each functionCall arrives whole: start, one args delta, stop."""

    __slots__ = ("_done", "_kind", "_next", "_open", "_started", "_stop", "_tools", "usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._next = 0
        self._open: int | None = None
        self._kind: str | None = None
        self._stop: StopReason | None = None
        self._tools = False
        self.usage: Usage | None = None

    def _switch(self, kind: str, out: list[StreamEvent]) -> int:
        if self._kind == kind and self._open is not None:
            return self._open
        if self._open is not None:
            out.append(BlockStop(self._open))
        self._open = self._next
        self._next += 1
        self._kind = kind
        return self._open

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        if not event.data or event.data == b"[DONE]":
            return []
        d = jsonio.loads(event.data)
        if isinstance(d, list):  # alt=json framing: an array of chunks
            out: list[StreamEvent] = []
            for item in d:
                out.extend(self._chunk(item))
            return out
        return self._chunk(d)

    def _chunk(self, d: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if "error" in d and "candidates" not in d:
            err = d["error"] if isinstance(d["error"], dict) else {}
            self._done = True
            return [ErrorEvent(as_int(err.get("code")) or 500, str(err.get("message") or "upstream error"))]
        if not self._started:
            self._started = True
            out.append(StreamStart(d.get("responseId"), d.get("modelVersion")))
        for cand in d.get("candidates") or ():
            for p in (cand.get("content") or {}).get("parts") or ():
                sig = p.get("thoughtSignature")
                if "text" in p:
                    if p.get("thought"):
                        out.append(ThinkingDelta(self._switch("thinking", out), p["text"] or "", sig, "gemini"))
                    elif p["text"]:
                        out.append(TextDelta(self._switch("text", out), p["text"]))
                    continue
                fc = p.get("functionCall")
                if fc is not None:
                    if self._open is not None:
                        out.append(BlockStop(self._open))
                    b = self._next
                    self._next += 1
                    self._open = None
                    self._kind = None
                    self._tools = True
                    name = fc.get("name") or ""
                    out.append(
                        ToolCallStart(b, fc.get("id") or ir.new_id("call_"), name, sig, "gemini" if sig else None)
                    )
                    out.append(ToolArgsDelta(b, jsonio.dumps(fc.get("args") or {}).decode()))
                    out.append(BlockStop(b))
            fr = cand.get("finishReason")
            if fr:
                self._stop = FINISH_IN.get(fr, "stop")
        usage = usage_of(d.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
            out.append(UsageEvent(usage))
        return out

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        out: list[StreamEvent] = []
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open = None
        stop = self._stop or "stop"
        if stop == "stop" and self._tools:
            stop = "tool_calls"
        out.append(Finish(stop, self.usage))
        return out


class GeminiStreamEncoder:
    """IR events → `data: {GenerateContentResponse}` frames; tool calls are buffered until complete."""

    __slots__ = ("_calls", "_done", "_id", "_model", "_usage")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ir.new_id("")
        self._done = False
        self._calls: dict[int, list[Any]] = {}  # IR block → [id, name, [args…], signature]
        self._usage: Usage | None = None

    def _frame(
        self, parts: list[dict[str, Any]] | None, finish: str | None = None, usage: Usage | None = None
    ) -> bytes:
        cand: dict[str, Any] = {"index": 0}
        if parts is not None:
            cand["content"] = {"role": "model", "parts": parts}
        if finish is not None:
            cand["finishReason"] = finish
        chunk: dict[str, Any] = {"candidates": [cand], "modelVersion": self._model, "responseId": self._id}
        if usage is not None:
            chunk["usageMetadata"] = usage_out(usage)
        return b"data: " + jsonio.dumps(chunk) + b"\n\n"

    def _flush_call(self, index: int) -> bytes:
        call = self._calls.pop(index, None)
        if call is None:
            return b""
        raw = "".join(call[2])
        try:
            args = jsonio.loads(raw) if raw else {}
        except ValueError:
            args = {}
        part: dict[str, Any] = {"functionCall": {"id": call[0], "name": call[1], "args": args}}
        if call[3]:
            part["thoughtSignature"] = call[3]
        return self._frame([part])

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(ev, TextDelta):
            return self._frame([{"text": ev.text}]) if ev.text else b""
        if isinstance(ev, ToolArgsDelta):
            call = self._calls.get(ev.index)
            if call is None:
                call = self._calls[ev.index] = [ir.new_id("call_"), "", [], None]
            call[2].append(ev.delta)
            return b""
        if isinstance(ev, ThinkingDelta):
            sig = ev.signature if ev.family == "gemini" else None
            if not ev.text and not sig:
                return b""
            part: dict[str, Any] = {"text": ev.text, "thought": True}
            if sig:
                part["thoughtSignature"] = sig
            return self._frame([part])
        if isinstance(ev, ToolCallStart):
            self._calls[ev.index] = [ev.id, ev.name, [], ev.signature if ev.family == "gemini" else None]
            return b""
        if isinstance(ev, BlockStop):
            return self._flush_call(ev.index)
        if isinstance(ev, UsageEvent):
            self._usage = ev.usage
            return b""
        if isinstance(ev, Finish):
            out = b"".join(self._flush_call(i) for i in list(self._calls))
            self._done = True
            return out + self._frame(None, FINISH_OUT[ev.stop_reason], ev.usage or self._usage or Usage())
        if isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        return b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self.encode(Finish("stop", self._usage))

    def error(self, status: int, message: str) -> bytes:
        self._done = True
        return stream_error_frame(status, message)
