"""Responses streams ⇄ IR: the strict event lifecycle the openai SDK checks.

The `responses.stream()` helper of the openai SDK checks the order: `response.created` first,
`output_item.added` before any delta of that item, `content_part.added` before text deltas, one
response id throughout, and a terminal `response.completed`. The encoder keeps that order by
construction, and numbers every event with an increasing `sequence_number`.
"""

from __future__ import annotations

import time
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.codec import as_int
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
from cliproxy.translate.responses.errors import error_status, stream_error_frame
from cliproxy.translate.responses.response import response_object, stop_in
from cliproxy.translate.responses.usage import usage_of
from cliproxy.translate.signatures import wrap
from cliproxy.translate.sse import SSEEvent

_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "response.done")


class ResponsesStreamDecoder:
    """Responses SSE → IR events. Blocks are keyed by output item (and content part for text).

    A function call announced without its call id or name (some upstreams fill them in only in
    `output_item.done`) is held, its argument deltas with it, and sent whole once the item is done,
    so the client sees the real id and name.
    """

    __slots__ = ("_blocks", "_done", "_fed", "_held", "_next", "_tools", "usage")

    def __init__(self) -> None:
        self._done = False
        self._next = 0
        self._blocks: dict[tuple[int, int], int] = {}  # (output_index, content_index) → IR block
        self._fed: set[int] = set()  # IR blocks that received deltas
        self._held: dict[int, list[str]] = {}  # output_index → argument deltas of a call held back
        self._tools = False
        self.usage: Usage | None = None

    def _block(self, oi: int, ci: int = 0) -> int:
        b = self._blocks.get((oi, ci))
        if b is None:
            b = self._blocks[(oi, ci)] = self._next
            self._next += 1
        return b

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        if not event.data or event.data == b"[DONE]":
            return []
        d = jsonio.loads(event.data)
        kind = d.get("type") or event.event
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            b = self._block(d.get("output_index", 0), d.get("content_index", 0))
            self._fed.add(b)
            return [TextDelta(b, d.get("delta") or "")]
        if kind == "response.function_call_arguments.delta":
            oi = d.get("output_index", 0)
            held = self._held.get(oi)
            if held is not None:
                held.append(d.get("delta") or "")
                return []
            b = self._block(oi)
            self._fed.add(b)
            return [ToolArgsDelta(b, d.get("delta") or "")]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            b = self._block(d.get("output_index", 0))
            self._fed.add(b)
            return [ThinkingDelta(b, d.get("delta") or "", family="openai")]
        if kind == "response.output_item.added":
            item = d.get("item") or {}
            if item.get("type") == "function_call":
                self._tools = True
                oi = d.get("output_index", 0)
                if not item.get("call_id") or not item.get("name"):
                    self._held[oi] = []
                    return []
                return [ToolCallStart(self._block(oi), item["call_id"], item["name"])]
            return []
        if kind == "response.output_item.done":
            return self._item_done(d.get("output_index", 0), d.get("item") or {})
        if kind == "response.created":
            r = d.get("response") or {}
            return [StreamStart(r.get("id"), r.get("model"))]
        if kind in _TERMINAL:
            r = d.get("response") or {}
            if kind == "response.failed":
                self._done = True
                err = r.get("error") or {}
                return [ErrorEvent(error_status(err), err.get("message") or "upstream response failed")]
            out: list[StreamEvent] = []
            usage = usage_of(r.get("usage"))
            if usage is not None:
                self.usage = usage
                out.append(UsageEvent(usage))
            output = r.get("output")
            if not self._blocks and output:  # no deltas were streamed: replay the final output
                out.extend(self._replay(output))
            elif self._held and isinstance(output, list):  # held calls whose item never said done
                for oi in sorted(self._held):
                    if oi < len(output):
                        out.extend(self._item_done(oi, output[oi]))
            self._done = True
            parts_stop = stop_in(r, [])
            stop: StopReason = "tool_calls" if self._tools and parts_stop == "stop" else parts_stop
            out.append(Finish(stop, self.usage))
            return out
        if kind == "error":
            self._done = True
            err = d.get("error") if isinstance(d.get("error"), dict) else d
            status = as_int(d.get("status")) or error_status(err)
            return [ErrorEvent(status, str(err.get("message") or "upstream error"))]
        return []

    def _item_done(self, oi: int, item: dict[str, Any]) -> list[StreamEvent]:
        kind = item.get("type")
        out: list[StreamEvent] = []
        if kind == "message":
            for ci, c in enumerate(item.get("content") or ()):
                key = (oi, ci)
                if key not in self._blocks and c.get("text"):
                    b = self._block(oi, ci)
                    out.append(TextDelta(b, c["text"]))
                if key in self._blocks:
                    out.append(BlockStop(self._blocks[key]))
        elif kind == "function_call":
            held = self._held.pop(oi, None)
            if (oi, 0) not in self._blocks:
                self._tools = True
                b = self._block(oi)
                cid = item.get("call_id") or item.get("id") or ir.new_id("call_")
                out.append(ToolCallStart(b, cid, item.get("name") or ""))
            b = self._blocks[(oi, 0)]
            args = item.get("arguments") or ("".join(held) if held else "")
            if b not in self._fed and args:
                out.append(ToolArgsDelta(b, args))
            out.append(BlockStop(b))
        elif kind == "reasoning":
            enc = item.get("encrypted_content")
            if enc or (oi, 0) in self._blocks:
                b = self._block(oi)
                out.append(ThinkingDelta(b, "", enc, "openai"))
                out.append(BlockStop(b))
        return out

    def _replay(self, output: list[dict[str, Any]]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for oi, item in enumerate(output):
            out.extend(self._item_done(oi, item))
        return out

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [Finish("tool_calls" if self._tools else "stop", self.usage)]


class _Item:
    """One output item being streamed to the client."""

    __slots__ = ("content_open", "extra", "id", "kind", "oi", "text")

    def __init__(self, kind: str, oi: int, iid: str, extra: dict[str, Any]) -> None:
        self.kind = kind  # message | reasoning | function_call
        self.oi = oi
        self.id = iid
        self.text: list[str] = []
        self.extra = extra
        self.content_open = False


class ResponsesStreamEncoder:
    """IR events → the Responses lifecycle stream, one item open at a time."""

    __slots__ = ("_created", "_done", "_id", "_items", "_model", "_open", "_output", "_seq", "_started", "_usage")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ir.new_id("resp_")
        self._created = int(time.time())
        self._seq = 0
        self._started = False
        self._done = False
        self._items: dict[int, _Item] = {}  # IR block → item
        self._open: _Item | None = None
        self._output: list[dict[str, Any]] = []
        self._usage: Usage | None = None

    def _ev(self, kind: str, payload: dict[str, Any]) -> bytes:
        payload["type"] = kind
        payload["sequence_number"] = self._seq
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + jsonio.dumps(payload) + b"\n\n"

    def _start(self) -> bytes:
        self._started = True
        obj = response_object(self._id, self._model, self._created, "in_progress", [], None)
        return self._ev("response.created", {"response": obj}) + self._ev("response.in_progress", {"response": obj})

    def _item(self, index: int, kind: str, extra: dict[str, Any] | None = None) -> tuple[bytes, _Item]:
        it = self._items.get(index)
        if it is not None:
            return b"", it
        out = self._close()
        prefix = {"message": "msg_", "reasoning": "rs_", "function_call": "fc_"}[kind]
        it = self._items[index] = _Item(kind, len(self._output), ir.new_id(prefix), extra or {})
        self._output.append({})  # placeholder, filled when the item is done
        self._open = it
        if kind == "message":
            item: dict[str, Any] = {
                "type": "message",
                "id": it.id,
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            out += self._ev("response.output_item.added", {"output_index": it.oi, "item": item})
            out += self._ev(
                "response.content_part.added",
                {
                    "item_id": it.id,
                    "output_index": it.oi,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
            )
        elif kind == "reasoning":
            out += self._ev(
                "response.output_item.added",
                {"output_index": it.oi, "item": {"type": "reasoning", "id": it.id, "summary": []}},
            )
        else:
            item = {
                "type": "function_call",
                "id": it.id,
                "call_id": it.extra["call_id"],
                "name": it.extra["name"],
                "arguments": "",
                "status": "in_progress",
            }
            out += self._ev("response.output_item.added", {"output_index": it.oi, "item": item})
        return out, it

    def _close(self, status: str = "completed") -> bytes:
        """`output_item.done` for the open item; `status` is `incomplete` when the answer was cut off."""
        it = self._open
        if it is None:
            return b""
        self._open = None
        text = "".join(it.text)
        base = {"item_id": it.id, "output_index": it.oi}
        if it.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            done = {"type": "message", "id": it.id, "status": status, "role": "assistant", "content": [part]}
            out = self._ev("response.output_text.done", {**base, "content_index": 0, "text": text, "logprobs": []})
            out += self._ev("response.content_part.done", {**base, "content_index": 0, "part": part})
        elif it.kind == "reasoning":
            summary = [{"type": "summary_text", "text": text}] if text else []
            done = {"type": "reasoning", "id": it.id, "summary": summary}
            if it.extra.get("encrypted_content"):
                done["encrypted_content"] = it.extra["encrypted_content"]
            out = b""
            if it.content_open:
                out += self._ev("response.reasoning_summary_text.done", {**base, "summary_index": 0, "text": text})
                out += self._ev(
                    "response.reasoning_summary_part.done",
                    {**base, "summary_index": 0, "part": {"type": "summary_text", "text": text}},
                )
        else:
            args = text or "{}"
            done = {
                "type": "function_call",
                "id": it.id,
                "call_id": it.extra["call_id"],
                "name": it.extra["name"],
                "arguments": args,
                "status": status,
            }
            out = self._ev(
                "response.function_call_arguments.done", {**base, "name": it.extra["name"], "arguments": args}
            )
        self._output[it.oi] = done
        return out + self._ev("response.output_item.done", {"output_index": it.oi, "item": done})

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        pre = b""
        if not self._started:
            if isinstance(ev, ErrorEvent):
                return self.error(ev.status, ev.message)
            pre = self._start()
        if isinstance(ev, TextDelta):
            out, it = self._item(ev.index, "message")
            if not ev.text:
                return pre + out
            it.text.append(ev.text)
            return (
                pre
                + out
                + self._ev(
                    "response.output_text.delta",
                    {"item_id": it.id, "output_index": it.oi, "content_index": 0, "delta": ev.text, "logprobs": []},
                )
            )
        if isinstance(ev, ToolArgsDelta):
            out, it = self._item(ev.index, "function_call", {"call_id": ir.new_id("call_"), "name": ""})
            it.text.append(ev.delta)
            return (
                pre
                + out
                + self._ev(
                    "response.function_call_arguments.delta",
                    {"item_id": it.id, "output_index": it.oi, "delta": ev.delta},
                )
            )
        if isinstance(ev, ThinkingDelta):
            if ev.redacted:
                return pre
            out, it = self._item(ev.index, "reasoning")
            if ev.signature:
                it.extra["encrypted_content"] = wrap(ev.family, ev.signature, native="openai")
            if ev.text:
                base = {"item_id": it.id, "output_index": it.oi, "summary_index": 0}
                if not it.content_open:
                    it.content_open = True
                    out += self._ev(
                        "response.reasoning_summary_part.added", {**base, "part": {"type": "summary_text", "text": ""}}
                    )
                it.text.append(ev.text)
                out += self._ev("response.reasoning_summary_text.delta", {**base, "delta": ev.text})
            return pre + out
        if isinstance(ev, ToolCallStart):
            out, _ = self._item(ev.index, "function_call", {"call_id": ev.id, "name": ev.name})
            return pre + out
        if isinstance(ev, BlockStop):
            # The open item is closed when the next one starts or the answer ends: only then is it
            # known whether the answer was cut off inside it (its status is `incomplete` then).
            return pre
        if isinstance(ev, UsageEvent):
            self._usage = ev.usage
            return pre
        if isinstance(ev, Finish):
            return pre + self._finish(ev)
        if isinstance(ev, ErrorEvent):
            return pre + self.error(ev.status, ev.message)
        return pre

    def _finish(self, ev: Finish) -> bytes:
        status = "incomplete" if ev.stop_reason in ("length", "content_filter") else "completed"
        out = self._close(status)
        self._done = True
        usage = ev.usage or self._usage
        output = [o for o in self._output if o]
        obj = response_object(self._id, self._model, self._created, status, output, usage)
        if ev.stop_reason == "content_filter":
            obj["incomplete_details"] = {"reason": "content_filter"}
        return out + self._ev("response." + status, {"response": obj})

    def finish(self) -> bytes:
        if self._done:
            return b""
        pre = b"" if self._started else self._start()
        return pre + self._finish(Finish("stop", self._usage))

    def error(self, status: int, message: str) -> bytes:
        self._done = True
        frame = stream_error_frame(status, message, sequence_number=self._seq)
        self._seq += 1
        return frame
