"""Anthropic Messages streams ⇄ IR: `event:`-framed, in the order the anthropic SDK's stream helper accepts."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.claude.blocks import claude_id
from cliproxy.translate.claude.errors import status_of_type, stream_error_frame
from cliproxy.translate.claude.response import STOP_IN, STOP_OUT
from cliproxy.translate.claude.usage import usage_of, usage_out
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
from cliproxy.translate.signatures import wrap
from cliproxy.translate.sse import SSEEvent


class ClaudeStreamDecoder:
    """Claude SSE → IR events; Claude's block indexes are already what the IR wants."""

    __slots__ = ("_done", "_kinds", "_stop", "usage")

    def __init__(self) -> None:
        self._done = False
        self._stop: StopReason = "stop"
        self._kinds: dict[int, str] = {}
        self.usage: Usage | None = None

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        if not event.data or event.data == b"[DONE]":
            return []
        d = jsonio.loads(event.data)
        kind = d.get("type") or event.event
        if kind == "content_block_delta":
            idx = d.get("index", 0)
            delta = d.get("delta") or {}
            dk = delta.get("type")
            if dk == "text_delta":
                return [TextDelta(idx, delta.get("text") or "")]
            if dk == "input_json_delta":
                pj = delta.get("partial_json") or ""
                return [ToolArgsDelta(idx, pj)] if pj else []
            if dk == "thinking_delta":
                return [ThinkingDelta(idx, delta.get("thinking") or "", family="claude")]
            if dk == "signature_delta":
                return [ThinkingDelta(idx, "", delta.get("signature"), "claude")]
            return []
        if kind == "content_block_start":
            idx = d.get("index", 0)
            block = d.get("content_block") or {}
            bk = block.get("type")
            self._kinds[idx] = str(bk)
            if bk == "tool_use":
                out: list[StreamEvent] = [
                    ToolCallStart(idx, block.get("id") or ir.new_id("toolu_"), block.get("name") or "")
                ]
                if block.get("input"):
                    out.append(ToolArgsDelta(idx, jsonio.dumps(block["input"]).decode()))
                return out
            if bk == "text" and block.get("text"):
                return [TextDelta(idx, block["text"])]
            if bk == "thinking" and (block.get("thinking") or block.get("signature")):
                return [ThinkingDelta(idx, block.get("thinking") or "", block.get("signature") or None, "claude")]
            if bk == "redacted_thinking":
                return [ThinkingDelta(idx, "", block.get("data"), "claude", redacted=True)]
            return []
        if kind == "content_block_stop":
            idx = d.get("index", 0)
            return (
                [BlockStop(idx)]
                if self._kinds.get(idx) in ("text", "tool_use", "thinking", "redacted_thinking")
                else []
            )
        if kind == "message_start":
            msg = d.get("message") or {}
            usage = usage_of(msg.get("usage"), self.usage)
            if usage is not None:
                self.usage = usage
            return [StreamStart(msg.get("id"), msg.get("model"), usage)]
        if kind == "message_delta":
            delta = d.get("delta") or {}
            sr = delta.get("stop_reason")
            if sr:
                self._stop = STOP_IN.get(sr, "stop")
            usage = usage_of(d.get("usage"), self.usage)
            if usage is None:
                return []
            self.usage = usage
            return [UsageEvent(usage)]
        if kind == "message_stop":
            return self.finish()
        if kind == "error":
            err = d.get("error") or {}
            self._done = True
            status = status_of_type(err.get("type")) or 500
            return [ErrorEvent(status, err.get("message") or "upstream error")]
        return []

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [Finish(self._stop, self.usage)]


class ClaudeStreamEncoder:
    """IR events → Claude SSE: message_start first, one block at a time, message_delta, message_stop."""

    __slots__ = ("_done", "_id", "_map", "_model", "_next", "_open", "_sig", "_started", "_tools", "_usage")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ir.new_id("msg_")
        self._started = False
        self._done = False
        self._next = 0
        self._open: int | None = None  # Claude index of the open block
        self._map: dict[int, int] = {}  # IR block → Claude index
        self._sig: dict[int, bool] = {}  # Claude thinking blocks that got a signature
        self._usage: Usage | None = None
        self._tools = False

    def _start(self, usage: Usage | None = None) -> bytes:
        self._started = True
        msg: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_out(usage or Usage()),
        }
        return b"event: message_start\ndata: " + jsonio.dumps({"type": "message_start", "message": msg}) + b"\n\n"

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        idx, self._open = self._open, None
        return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":' + str(idx).encode() + b"}\n\n"

    def _block(self, ir_index: int, block: dict[str, Any]) -> tuple[bytes, int]:
        """The Claude index for an IR block, opening it (and closing the previous one) when new."""
        idx = self._map.get(ir_index)
        if idx is not None:
            return b"", idx
        out = self._close()
        idx = self._map[ir_index] = self._next
        self._next += 1
        self._open = idx
        start = {"type": "content_block_start", "index": idx, "content_block": block}
        return out + b"event: content_block_start\ndata: " + jsonio.dumps(start) + b"\n\n", idx

    @staticmethod
    def _delta(idx: int, delta: dict[str, Any]) -> bytes:
        return (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(idx).encode()
            + b',"delta":'
            + jsonio.dumps(delta)
            + b"}\n\n"
        )

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        pre = b""
        if not self._started:
            if isinstance(ev, StreamStart):
                self._usage = ev.usage
                return self._start(ev.usage)
            if isinstance(ev, ErrorEvent):
                return self.error(ev.status, ev.message)
            pre = self._start()
        if isinstance(ev, TextDelta):
            out, idx = self._block(ev.index, {"type": "text", "text": ""})
            return pre + out + (self._delta(idx, {"type": "text_delta", "text": ev.text}) if ev.text else b"")
        if isinstance(ev, ToolArgsDelta):
            out, idx = self._block(ev.index, {"type": "tool_use", "id": ir.new_id("toolu_"), "name": "", "input": {}})
            return pre + out + self._delta(idx, {"type": "input_json_delta", "partial_json": ev.delta})
        if isinstance(ev, ThinkingDelta):
            if ev.redacted:
                if ev.family != "claude" or not ev.signature:
                    return pre
                out, idx = self._block(ev.index, {"type": "redacted_thinking", "data": ev.signature})
                return pre + out
            out, idx = self._block(ev.index, {"type": "thinking", "thinking": "", "signature": ""})
            if ev.text:
                out += self._delta(idx, {"type": "thinking_delta", "thinking": ev.text})
            if ev.signature:
                self._sig[idx] = True
                sig = wrap(ev.family, ev.signature, native="claude")
                out += self._delta(idx, {"type": "signature_delta", "signature": sig})
            return pre + out
        if isinstance(ev, ToolCallStart):
            self._tools = True
            block = {"type": "tool_use", "id": claude_id(ev.id), "name": ev.name, "input": {}}
            out, _ = self._block(ev.index, block)
            return pre + out
        if isinstance(ev, BlockStop):
            mapped = self._map.get(ev.index)
            return pre + (self._close() if mapped is not None and mapped == self._open else b"")
        if isinstance(ev, UsageEvent):
            self._usage = ev.usage
            return pre
        if isinstance(ev, Finish):
            return pre + self._finish(ev)
        if isinstance(ev, ErrorEvent):
            return pre + self.error(ev.status, ev.message)
        return pre

    def _finish(self, ev: Finish) -> bytes:
        self._done = True
        usage = ev.usage or self._usage or Usage()
        stop = ev.stop_reason
        if stop == "stop" and self._tools:
            stop = "tool_calls"
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": STOP_OUT[stop], "stop_sequence": None},
            "usage": usage_out(usage),
        }
        return (
            self._close()
            + b"event: message_delta\ndata: "
            + jsonio.dumps(delta)
            + b'\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
        )

    def finish(self) -> bytes:
        if self._done:
            return b""
        pre = b"" if self._started else self._start()
        return pre + self._finish(Finish("stop", self._usage))

    def error(self, status: int, message: str) -> bytes:
        self._done = True
        return stream_error_frame(status, message)
