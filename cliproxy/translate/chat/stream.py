"""Chat Completions streams ⇄ IR: `data:` chunks ending in `[DONE]`, which never follows an error."""

from __future__ import annotations

import time
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.chat.errors import error_status, stream_error_frame
from cliproxy.translate.chat.response import FINISH_IN, FINISH_OUT
from cliproxy.translate.chat.usage import usage_of, usage_out
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
from cliproxy.translate.sse import DONE_FRAME, SSEEvent


class _Call:
    """A streamed tool call not yet shown: chat may send its id or name after its first delta."""

    __slots__ = ("args", "id", "name")

    def __init__(self, cid: str | None, name: str | None) -> None:
        self.id = cid
        self.name = name
        self.args: list[str] = []


class ChatStreamDecoder:
    """Chat chunks → IR events. Chat has no block markers: a block ends when another kind starts.

    IR blocks never interleave, so that every client wire can show one block after another. Tool
    calls stream live one at a time: the first call goes out as soon as its id and name are known; a
    call whose id or name comes later, and the parallel calls after the live one (whose deltas may
    interleave with it), are held and sent whole, in the upstream's `index` order, when the live one
    ends (text starts, or the stream finishes).
    """

    __slots__ = ("_block", "_calls", "_done", "_live", "_next", "_open", "_started", "_stop", "_tools", "usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._next = 0  # next IR block index
        self._open: int | None = None  # the IR block open now
        self._block: str | None = None  # "text" | "thinking" | "tool"
        self._live: int | None = None  # chat tool_calls[].index of the call streaming live
        self._calls: dict[int, _Call] = {}  # held calls by chat index
        self._tools = False
        self._stop: StopReason | None = None
        self.usage: Usage | None = None

    def _switch(self, kind: str, out: list[StreamEvent]) -> int:
        if self._block == kind and self._open is not None:
            return self._open
        if self._block == "tool" or self._calls:
            self._end_tools(out)
        elif self._open is not None:
            out.append(BlockStop(self._open))
        self._open = self._next
        self._next += 1
        self._block = kind
        return self._open

    def _go_live(self, index: int, call: _Call, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open))
        block = self._open = self._next
        self._next += 1
        self._block = "tool"
        self._live = index
        del self._calls[index]
        out.append(ToolCallStart(block, call.id or ir.new_id("call_"), call.name or ""))
        if call.args:
            out.append(ToolArgsDelta(block, "".join(call.args)))

    def _end_tools(self, out: list[StreamEvent]) -> None:
        """Stop the live call, then send the held ones whole, in index order."""
        if self._block == "tool" and self._open is not None:
            out.append(BlockStop(self._open))
            self._open = None
            self._block = None
        self._live = None
        for index in sorted(self._calls):
            call = self._calls[index]
            block = self._next
            self._next += 1
            out.append(ToolCallStart(block, call.id or ir.new_id("call_"), call.name or ""))
            if call.args:
                out.append(ToolArgsDelta(block, "".join(call.args)))
            out.append(BlockStop(block))
        self._calls.clear()

    def _tool_delta(self, tc: dict[str, Any], out: list[StreamEvent]) -> None:
        index = tc.get("index", 0)
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if index == self._live:
            if args and self._open is not None:
                out.append(ToolArgsDelta(self._open, args))
            return
        self._tools = True
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(tc.get("id"), fn.get("name"))
        else:
            call.id = call.id or tc.get("id")
            call.name = call.name or fn.get("name")
        if args:
            call.args.append(args)
        if self._live is None and call.id and call.name and index == min(self._calls):
            self._go_live(index, call, out)

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data
        if data == b"[DONE]":
            return self._finish()
        if not data:
            return []
        chunk = jsonio.loads(data)
        out: list[StreamEvent] = []
        if not isinstance(chunk, dict):
            return out
        if "error" in chunk and not chunk.get("choices"):
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            out.append(ErrorEvent(error_status(err), str(err.get("message") or "upstream error")))
            self._done = True
            return out
        if not self._started:
            self._started = True
            out.append(StreamStart(chunk.get("id"), chunk.get("model")))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                out.append(ThinkingDelta(self._switch("thinking", out), reasoning))
            content = delta.get("content") or delta.get("refusal")
            if content:
                out.append(TextDelta(self._switch("text", out), content))
            for tc in delta.get("tool_calls") or ():
                self._tool_delta(tc, out)
            fr = choice.get("finish_reason")
            if fr:
                self._stop = FINISH_IN.get(fr, "stop")
        usage = usage_of(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            out.append(UsageEvent(usage))
        return out

    def _finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        out: list[StreamEvent] = []
        if self._block == "tool" or self._calls:
            self._end_tools(out)
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open = None
        stop = self._stop or ("tool_calls" if self._tools else "stop")
        out.append(Finish(stop, self.usage))
        return out

    def finish(self) -> list[StreamEvent]:
        return self._finish()


class ChatStreamEncoder:
    """IR events → `data: {chunk}` frames; `[DONE]` after the finish (never after an error)."""

    __slots__ = ("_created", "_done", "_head", "_id", "_model", "_started", "_tools")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ir.new_id("chatcmpl-")
        self._created = int(time.time())
        self._head = b""
        self._started = False
        self._done = False
        self._tools: dict[int, int] = {}  # IR block → chat tool index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, usage: Usage | None = None) -> bytes:
        if not self._head:
            self._head = (
                b'data: {"id":'
                + jsonio.dumps(self._id)
                + b',"object":"chat.completion.chunk","created":'
                + str(self._created).encode()
                + b',"model":'
                + jsonio.dumps(self._model)
                + b',"choices":[{"index":0,"delta":'
            )
        tail = b',"finish_reason":null}]}\n\n' if finish is None else b',"finish_reason":"' + finish.encode() + b'"}]'
        if finish is not None:
            tail += (b',"usage":' + jsonio.dumps(usage_out(usage)) if usage is not None else b"") + b"}\n\n"
        return self._head + jsonio.dumps(delta) + tail

    def _start(self) -> bytes:
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        pre = b"" if self._started or isinstance(ev, StreamStart) else self._start()
        if isinstance(ev, TextDelta):
            return pre + self._chunk({"content": ev.text})
        if isinstance(ev, ToolArgsDelta):
            ti = self._tools.get(ev.index, 0)
            return pre + self._chunk({"tool_calls": [{"index": ti, "function": {"arguments": ev.delta}}]})
        if isinstance(ev, ThinkingDelta):
            return pre + (self._chunk({"reasoning_content": ev.text}) if ev.text else b"")
        if isinstance(ev, ToolCallStart):
            ti = self._tools[ev.index] = len(self._tools)
            call = {"index": ti, "id": ev.id, "type": "function", "function": {"name": ev.name, "arguments": ""}}
            return pre + self._chunk({"tool_calls": [call]})
        if isinstance(ev, StreamStart):
            return b"" if self._started else self._start()
        if isinstance(ev, Finish):
            self._done = True
            return pre + self._chunk({}, FINISH_OUT[ev.stop_reason], ev.usage) + DONE_FRAME
        if isinstance(ev, ErrorEvent):
            return pre + self.error(ev.status, ev.message)
        return pre

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self.encode(Finish("tool_calls" if self._tools else "stop"))

    def error(self, status: int, message: str) -> bytes:
        self._done = True
        return stream_error_frame(status, message)
