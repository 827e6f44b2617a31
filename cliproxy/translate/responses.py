"""OpenAI Responses (and Codex) ⇄ IR: input items, output items, and the strict lifecycle stream.

The `responses.stream()` helper of the openai SDK checks the order: `response.created` first,
`output_item.added` before any delta of that item, `content_part.added` before text deltas, one
response id throughout, and a terminal `response.completed`. The encoder keeps that order by
construction, and numbers every event with an increasing `sequence_number`.
"""

from __future__ import annotations

import time
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect, ir
from cliproxy.translate.codec import Codec, as_int
from cliproxy.translate.errors import stream_error_frame
from cliproxy.translate.ir import (
    BlockStop,
    ErrorEvent,
    Finish,
    ImagePart,
    Message,
    Part,
    Reasoning,
    Request,
    Response,
    ResponseFormat,
    StopReason,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
    UsageEvent,
)
from cliproxy.translate.reasoning import effort_for, is_off
from cliproxy.translate.signatures import unwrap, wrap
from cliproxy.translate.sse import SSEEvent

# ---- requests ------------------------------------------------------------------------------------


def _content_in(content: Any) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[TextPart | ImagePart] = []
    for p in content or ():
        kind = p.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append(TextPart(p.get("text") or ""))
        elif kind == "refusal":
            out.append(TextPart(p.get("refusal") or ""))
        elif kind == "input_image":
            url = p.get("image_url")
            if isinstance(url, dict):
                url = url.get("url")
            if isinstance(url, str):
                out.append(ImagePart.from_url(url))
    return out


def _append(messages: list[Message], role: ir.Role, parts: list[Part]) -> None:
    if messages and messages[-1].role == role and role != "system":
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, parts))


def _flat_tools(tools: Any, out: list[Tool]) -> None:
    for t in tools or ():
        kind = t.get("type")
        if kind == "function":
            out.append(Tool(t.get("name") or "", t.get("description"), t.get("parameters") or {}))
        elif kind == "namespace":  # Codex groups sub-agent tools; other dialects only know flat functions
            _flat_tools(t.get("tools"), out)


def decode_request(body: dict[str, Any]) -> Request:
    """A Responses body as IR: `input` items, `instructions`, namespaced (Codex) tools flattened."""
    req = Request(model=body.get("model") or "")
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        req.system.append(TextPart(instructions))
    inp = body.get("input")
    if isinstance(inp, str):
        req.messages.append(Message("user", [TextPart(inp)]))
    else:
        leading = True
        for item in inp or ():
            kind = item.get("type") or "message"
            if kind == "message":
                role = item.get("role")
                parts = _content_in(item.get("content"))
                if role in ("system", "developer"):
                    texts = [p for p in parts if isinstance(p, TextPart)]
                    if leading:
                        req.system.extend(texts)
                    else:
                        req.messages.append(Message("system", list(texts)))
                    continue
                leading = False
                _append(req.messages, "assistant" if role == "assistant" else "user", list(parts))
                continue
            leading = False
            if kind == "function_call":
                call = ToolCallPart(item.get("call_id") or item.get("id") or "", item.get("name") or "", "")
                call.arguments = item.get("arguments") or "{}"
                _append(req.messages, "assistant", [call])
            elif kind == "function_call_output":
                out = item.get("output")
                content = _content_in(out) if out is not None else []
                _append(req.messages, "user", [ToolResultPart(item.get("call_id") or "", content)])
            elif kind == "reasoning":
                text = "".join(s.get("text") or "" for s in item.get("summary") or ())
                family, enc = unwrap(item.get("encrypted_content"), native="openai")
                _append(req.messages, "assistant", [ThinkingPart(text, enc, family, item_id=item.get("id"))])
    _flat_tools(body.get("tools"), req.tools)
    tc = body.get("tool_choice")
    if isinstance(tc, str) and tc in ("auto", "none", "required"):
        req.tool_choice = ToolChoice(tc)  # type: ignore[arg-type]
    elif isinstance(tc, dict) and tc.get("type") == "function":
        req.tool_choice = ToolChoice("tool", tc.get("name"))
    req.parallel_tool_calls = body.get("parallel_tool_calls")
    req.max_tokens = body.get("max_output_tokens")
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    text_cfg = body.get("text")
    fmt = text_cfg.get("format") if isinstance(text_cfg, dict) else None
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            req.response_format = ResponseFormat("json_schema", fmt.get("schema"), fmt.get("name"), fmt.get("strict"))
        elif fmt.get("type") == "json_object":
            req.response_format = ResponseFormat("json_object")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and (reasoning.get("effort") or reasoning.get("summary")):
        req.reasoning = Reasoning(effort=reasoning.get("effort"), summary=reasoning.get("summary"))
        if reasoning.get("summary") not in (None, "none"):
            req.reasoning.include_thoughts = True
    req.stream = bool(body.get("stream"))
    req.user = body.get("user")
    md = body.get("metadata")
    req.metadata = md if isinstance(md, dict) else None
    return req


def _content_out(parts: list[TextPart | ImagePart], text_type: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": text_type, "text": p.text})
        else:
            out.append({"type": "input_image", "image_url": p.as_url()})
    return out


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a stateless Responses body (`store: false`, full history, encrypted reasoning replayed)."""
    items: list[dict[str, Any]] = []
    for m in req.messages:
        if m.role == "system":
            texts: list[TextPart | ImagePart] = [p for p in m.parts if isinstance(p, TextPart)]
            items.append({"type": "message", "role": "developer", "content": _content_out(texts, "input_text")})
            continue
        assistant = m.role == "assistant"
        run: list[TextPart | ImagePart] = []

        def flush(run: list[TextPart | ImagePart] = run, assistant: bool = assistant) -> None:
            if run:
                role = "assistant" if assistant else "user"
                content = _content_out(run, "output_text" if assistant else "input_text")
                items.append({"type": "message", "role": role, "content": content})
                run.clear()

        for p in m.parts:
            if isinstance(p, TextPart | ImagePart):
                run.append(p)
                continue
            flush()
            if isinstance(p, ToolCallPart):
                items.append(
                    {
                        "type": "function_call",
                        "call_id": ir.short_id(p.id, 64),
                        "name": p.name,
                        "arguments": p.arguments or "{}",
                    }
                )
            elif isinstance(p, ToolResultPart):
                output: Any = (
                    ir.text_of(p.content)
                    if all(isinstance(c, TextPart) for c in p.content)
                    else _content_out(p.content, "input_text")
                )
                items.append({"type": "function_call_output", "call_id": ir.short_id(p.call_id, 64), "output": output})
            elif isinstance(p, ThinkingPart) and p.family == "openai" and p.signature:
                # Only encrypted reasoning can be replayed statelessly (store=false); the rest is dropped.
                summary = [{"type": "summary_text", "text": p.text}] if p.text else []
                rid = p.item_id or ir.new_id("rs_")
                items.append({"type": "reasoning", "id": rid, "summary": summary, "encrypted_content": p.signature})
        flush()
    body: dict[str, Any] = {"model": req.model, "input": items}
    if req.system:
        body["instructions"] = "\n\n".join(p.text for p in req.system)
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "parameters": t.parameters or {"type": "object", "properties": {}},
            }
            for t in req.tools
        ]
    if req.tool_choice is not None:
        tc = req.tool_choice
        body["tool_choice"] = tc.mode if tc.mode != "tool" else {"type": "function", "name": tc.name}
    if req.parallel_tool_calls is not None and req.tools:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    rf = req.response_format
    if rf is not None and rf.kind != "text":
        if rf.kind == "json_schema":
            fmt: dict[str, Any] = {"type": "json_schema", "name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                fmt["strict"] = rf.strict
        else:
            fmt = {"type": "json_object"}
        body["text"] = {"format": fmt}
    r = req.reasoning
    if r is not None:
        effort = "none" if is_off(r) else effort_for(r)
        reasoning: dict[str, Any] = {}
        if effort:
            reasoning["effort"] = effort
        if effort != "none" and (r.summary or r.include_thoughts):
            reasoning["summary"] = r.summary or "auto"
        if reasoning:
            body["reasoning"] = reasoning
        if effort != "none":
            body["include"] = ["reasoning.encrypted_content"]
    body["store"] = False  # the proxy always sends the full history
    if req.stream:
        body["stream"] = True
    if req.user and len(req.user) <= ir.OPENAI_USER_MAX:
        body["user"] = req.user
    return body


# ---- non-stream responses ------------------------------------------------------------------------


def _usage_in(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    idt = u.get("input_tokens_details") or {}
    odt = u.get("output_tokens_details") or {}
    return Usage(
        input_tokens=as_int(u.get("input_tokens")),
        output_tokens=as_int(u.get("output_tokens")),
        cached_tokens=as_int(idt.get("cached_tokens")),
        reasoning_tokens=as_int(odt.get("reasoning_tokens")),
    )


def _usage_out(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def _output_parts(output: Any) -> list[Part]:
    parts: list[Part] = []
    for item in output or ():
        kind = item.get("type")
        if kind == "message":
            parts.extend(_content_in(item.get("content")))
        elif kind == "function_call":
            parts.append(
                ToolCallPart(
                    item.get("call_id") or item.get("id") or "", item.get("name") or "", item.get("arguments") or ""
                )
            )
        elif kind == "reasoning":
            text = "".join(s.get("text") or "" for s in item.get("summary") or ())
            if not text:
                text = "".join(c.get("text") or "" for c in item.get("content") or ())
            parts.append(ThinkingPart(text, item.get("encrypted_content"), "openai", item_id=item.get("id")))
    return parts


def _stop_in(body: dict[str, Any], parts: list[Part]) -> StopReason:
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if any(isinstance(p, ToolCallPart) for p in parts) else "stop"


def decode_response(body: dict[str, Any]) -> Response:
    """A Responses object as IR; the stop reason comes from status and the presence of calls."""
    parts = _output_parts(body.get("output"))
    return Response(
        id=body.get("id") or ir.new_id("resp_"),
        model=body.get("model") or "",
        parts=parts,
        stop_reason=_stop_in(body, parts),
        usage=_usage_in(body.get("usage")),
        created=as_int(body.get("created_at")),
    )


def _output_items(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    msg: dict[str, Any] | None = None
    for p in parts:
        if isinstance(p, TextPart):
            if msg is None:
                msg = {
                    "type": "message",
                    "id": ir.new_id("msg_"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [],
                }
                out.append(msg)
            msg["content"].append({"type": "output_text", "text": p.text, "annotations": []})
            continue
        msg = None
        if isinstance(p, ToolCallPart):
            out.append(
                {
                    "type": "function_call",
                    "id": ir.new_id("fc_"),
                    "call_id": p.id,
                    "name": p.name,
                    "arguments": p.arguments or "{}",
                    "status": "completed",
                }
            )
        elif isinstance(p, ThinkingPart) and not p.redacted:
            item: dict[str, Any] = {
                "type": "reasoning",
                "id": p.item_id or ir.new_id("rs_"),
                "summary": [{"type": "summary_text", "text": p.text}] if p.text else [],
            }
            if p.signature:
                item["encrypted_content"] = wrap(p.family, p.signature, native="openai")
            out.append(item)
    return out


def _response_object(
    rid: str, model: str, created: int, status: str, output: list[dict[str, Any]], usage: Usage | None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "previous_response_id": None,
        "usage": _usage_out(usage) if usage is not None else None,
    }
    return obj


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a Responses object; length and content-filter stops become `status: incomplete`."""
    status = "incomplete" if resp.stop_reason in ("length", "content_filter") else "completed"
    rid = resp.id if resp.id.startswith("resp_") else "resp_" + resp.id
    obj = _response_object(
        rid, resp.model, resp.created or int(time.time()), status, _output_items(resp.parts), resp.usage
    )
    if resp.stop_reason == "content_filter":
        obj["incomplete_details"] = {"reason": "content_filter"}
    return obj


def usage_from_response(body: dict[str, Any]) -> Usage | None:
    return _usage_in(body.get("usage"))


def usage_from_event(data: dict[str, Any]) -> Usage | None:
    resp = data.get("response")
    if isinstance(resp, dict):
        return _usage_in(resp.get("usage"))
    return None


# ---- streams -------------------------------------------------------------------------------------

_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "response.done")


class ResponsesStreamDecoder:
    """Responses SSE → IR events. Blocks are keyed by output item (and content part for text)."""

    __slots__ = ("_blocks", "_done", "_fed", "_next", "_tools", "usage")

    def __init__(self) -> None:
        self._done = False
        self._next = 0
        self._blocks: dict[tuple[int, int], int] = {}  # (output_index, content_index) → IR block
        self._fed: set[int] = set()  # IR blocks that received deltas
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
            b = self._block(d.get("output_index", 0))
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
                b = self._block(d.get("output_index", 0))
                return [
                    ToolCallStart(
                        b, item.get("call_id") or item.get("id") or ir.new_id("call_"), item.get("name") or ""
                    )
                ]
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
                return [ErrorEvent(500, err.get("message") or "upstream response failed")]
            out: list[StreamEvent] = []
            usage = _usage_in(r.get("usage"))
            if usage is not None:
                self.usage = usage
                out.append(UsageEvent(usage))
            if not self._blocks and r.get("output"):  # no deltas were streamed: replay the final output
                out.extend(self._replay(r["output"]))
            self._done = True
            parts_stop = _stop_in(r, [])
            stop: StopReason = "tool_calls" if self._tools and parts_stop == "stop" else parts_stop
            out.append(Finish(stop, self.usage))
            return out
        if kind == "error":
            self._done = True
            err = d.get("error") if isinstance(d.get("error"), dict) else d
            return [ErrorEvent(as_int(d.get("status")) or 500, str(err.get("message") or "upstream error"))]
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
            if (oi, 0) not in self._blocks:
                self._tools = True
                b = self._block(oi)
                out.append(ToolCallStart(b, item.get("call_id") or ir.new_id("call_"), item.get("name") or ""))
            b = self._blocks[(oi, 0)]
            if b not in self._fed and item.get("arguments"):
                out.append(ToolArgsDelta(b, item["arguments"]))
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
        obj = _response_object(self._id, self._model, self._created, "in_progress", [], None)
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

    def _close(self) -> bytes:
        it = self._open
        if it is None:
            return b""
        self._open = None
        text = "".join(it.text)
        base = {"item_id": it.id, "output_index": it.oi}
        if it.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            done = {"type": "message", "id": it.id, "status": "completed", "role": "assistant", "content": [part]}
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
                "status": "completed",
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
            stopped = self._items.get(ev.index)
            return pre + (self._close() if stopped is not None and stopped is self._open else b"")
        if isinstance(ev, UsageEvent):
            self._usage = ev.usage
            return pre
        if isinstance(ev, Finish):
            return pre + self._finish(ev)
        if isinstance(ev, ErrorEvent):
            return pre + self.error(ev.status, ev.message)
        return pre

    def _finish(self, ev: Finish) -> bytes:
        out = self._close()
        self._done = True
        usage = ev.usage or self._usage
        status = "incomplete" if ev.stop_reason in ("length", "content_filter") else "completed"
        output = [o for o in self._output if o]
        obj = _response_object(self._id, self._model, self._created, status, output, usage)
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
        frame = stream_error_frame(Dialect.RESPONSES, status, message, sequence_number=self._seq)
        self._seq += 1
        return frame


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a Responses body."""
    effort = "none" if is_off(r) else effort_for(r)
    if effort:
        current = body.get("reasoning")
        body["reasoning"] = {**(current if isinstance(current, dict) else {}), "effort": effort}


CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=ResponsesStreamDecoder,
    stream_encoder=ResponsesStreamEncoder,
    usage_from_response=usage_from_response,
    usage_from_event=usage_from_event,
    set_reasoning=set_reasoning,
)
