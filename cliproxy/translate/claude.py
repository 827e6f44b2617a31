"""Anthropic Messages ⇄ IR: requests, responses, and `event:`-framed streams the SDK helper accepts."""

from __future__ import annotations

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
from cliproxy.translate.reasoning import budget_for, is_off
from cliproxy.translate.signatures import unwrap, wrap
from cliproxy.translate.sse import SSEEvent

DEFAULT_MAX_TOKENS = 8192  # Claude requires max_tokens; other dialects may omit it

_STOP_IN: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop_sequence",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
_STOP_OUT: dict[str, str] = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_EPHEMERAL = {"type": "ephemeral"}

# ---- requests ------------------------------------------------------------------------------------


def _image_in(block: dict[str, Any]) -> ImagePart | None:
    src = block.get("source") or {}
    if src.get("type") == "base64":
        return ImagePart(data=src.get("data"), media_type=src.get("media_type"), cache="cache_control" in block)
    if src.get("type") == "url":
        return ImagePart(url=src.get("url"), cache="cache_control" in block)
    return None


def _result_content(content: Any) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[TextPart | ImagePart] = []
    for b in content or ():
        kind = b.get("type")
        if kind == "text":
            out.append(TextPart(b.get("text") or ""))
        elif kind == "image":
            img = _image_in(b)
            if img is not None:
                out.append(img)
    return out


def _blocks_in(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[Part] = []
    for b in content or ():
        kind = b.get("type")
        if kind == "text":
            parts.append(TextPart(b.get("text") or "", "cache_control" in b))
        elif kind == "tool_use":
            parts.append(
                ToolCallPart(b.get("id") or "", b.get("name") or "", jsonio.dumps(b.get("input", {})).decode())
            )
        elif kind == "tool_result":
            parts.append(
                ToolResultPart(
                    b.get("tool_use_id") or "",
                    _result_content(b.get("content")),
                    bool(b.get("is_error")),
                    cache="cache_control" in b,
                )
            )
        elif kind == "image":
            img = _image_in(b)
            if img is not None:
                parts.append(img)
        elif kind == "thinking":
            family, sig = unwrap(b.get("signature") or None, native="claude")
            parts.append(ThinkingPart(b.get("thinking") or "", sig, family))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart("", b.get("data"), "claude", redacted=True))
    return parts


def decode_request(body: dict[str, Any]) -> Request:
    """A Messages body as IR; `role: system` entries inside `messages` (Claude Code) are kept in place."""
    req = Request(model=body.get("model") or "")
    system = body.get("system")
    if isinstance(system, str):
        req.system.append(TextPart(system))
    elif isinstance(system, list):
        req.system.extend(
            TextPart(b.get("text") or "", "cache_control" in b) for b in system if b.get("type") == "text"
        )
    for m in body.get("messages") or ():
        role = m.get("role")
        parts = _blocks_in(m.get("content"))
        if role == "system":
            req.messages.append(Message("system", [p for p in parts if isinstance(p, TextPart)]))
        else:
            req.messages.append(Message("assistant" if role == "assistant" else "user", parts))
    for t in body.get("tools") or ():
        if "input_schema" in t or t.get("type") in (None, "custom"):
            req.tools.append(Tool(t.get("name") or "", t.get("description"), t.get("input_schema") or {}))
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        kind = tc.get("type")
        if kind == "any":
            req.tool_choice = ToolChoice("required")
        elif kind == "tool":
            req.tool_choice = ToolChoice("tool", tc.get("name"))
        elif kind in ("auto", "none"):
            req.tool_choice = ToolChoice(kind)
        if tc.get("disable_parallel_tool_use"):
            req.parallel_tool_calls = False
    req.max_tokens = body.get("max_tokens")
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    req.top_k = body.get("top_k")
    req.stop = list(body.get("stop_sequences") or ())
    thinking = body.get("thinking")
    oc = body.get("output_config")
    output_config: dict[str, Any] = oc if isinstance(oc, dict) else {}
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            req.reasoning = Reasoning(budget=as_int(thinking.get("budget_tokens")) or None, include_thoughts=True)
        elif kind == "adaptive":
            req.reasoning = Reasoning(adaptive=True, include_thoughts=thinking.get("display") != "omitted")
        elif kind == "disabled":
            req.reasoning = Reasoning(effort="none", budget=0)
    effort = output_config.get("effort")
    if isinstance(effort, str) and not is_off(req.reasoning):
        req.reasoning = req.reasoning or Reasoning()
        req.reasoning.effort = effort
    fmt = output_config.get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        req.response_format = ResponseFormat("json_schema", fmt.get("schema"))
    req.stream = bool(body.get("stream"))
    md = body.get("metadata")
    if isinstance(md, dict):
        req.user = md.get("user_id")
    return req


def _image_out(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        src = {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data}
    else:
        src = {"type": "url", "url": p.url or ""}
    out: dict[str, Any] = {"type": "image", "source": src}
    if p.cache:
        out["cache_control"] = _EPHEMERAL
    return out


def _text_out(p: TextPart) -> dict[str, Any]:
    if p.cache:
        return {"type": "text", "text": p.text, "cache_control": _EPHEMERAL}
    return {"type": "text", "text": p.text}


def _blocks_out(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            if p.text:  # Claude rejects empty text blocks
                out.append(_text_out(p))
        elif isinstance(p, ToolCallPart):
            try:
                args = jsonio.loads(p.arguments) if p.arguments else {}
            except ValueError:
                args = {}
            out.append(
                {"type": "tool_use", "id": p.id, "name": p.name, "input": args if isinstance(args, dict) else {}}
            )
        elif isinstance(p, ToolResultPart):
            content: Any = (
                ir.text_of(p.content)
                if all(isinstance(c, TextPart) for c in p.content)
                else [_text_out(c) if isinstance(c, TextPart) else _image_out(c) for c in p.content]
            )
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": p.call_id, "content": content}
            if p.is_error:
                block["is_error"] = True
            if p.cache:
                block["cache_control"] = _EPHEMERAL
            out.append(block)
        elif isinstance(p, ImagePart):
            out.append(_image_out(p))
        elif isinstance(p, ThinkingPart) and p.family == "claude" and p.signature:
            if p.redacted:
                out.append({"type": "redacted_thinking", "data": p.signature})
            else:
                out.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
    return out


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a Messages body: alternating turns, max_tokens always set, only Claude-signed thinking replayed."""
    messages: list[dict[str, Any]] = []
    for m in req.messages:
        blocks = _blocks_out(m.parts)
        if not blocks:
            continue
        role = m.role
        if role != "system" and messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)  # Claude wants alternating turns
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.system:
        body["system"] = [_text_out(p) for p in req.system if p.text]
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    thinking_on = False
    r = req.reasoning
    if r is not None:
        body["thinking"], max_tokens = thinking_for(r, max_tokens)
        thinking_on = body["thinking"]["type"] != "disabled"
        if thinking_on and _lost_thinking(messages):
            # An assistant tool turn without its signed thinking block is rejected while thinking is on;
            # the history came from another family, so this turn runs without thinking.
            del body["thinking"]
            thinking_on = False
    body["max_tokens"] = max_tokens
    if not thinking_on:  # Claude refuses sampling settings while thinking
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.top_k is not None:
            body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": t.parameters or {"type": "object", "properties": {}},
            }
            for t in req.tools
        ]
    tc = req.tool_choice
    if tc is not None or req.parallel_tool_calls is False:
        mode = tc.mode if tc is not None else "auto"
        choice: dict[str, Any] = {"type": {"required": "any"}.get(mode, mode)}
        if mode == "tool":
            choice["name"] = tc.name if tc is not None else None
        if req.parallel_tool_calls is False and mode != "none":
            choice["disable_parallel_tool_use"] = True
        if req.tools or mode == "none":
            body["tool_choice"] = choice
    rf = req.response_format
    if rf is not None and rf.kind == "json_schema" and rf.schema:
        body["output_config"] = {"format": {"type": "json_schema", "schema": rf.schema}}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    return body


def thinking_for(r: Reasoning, max_tokens: int) -> tuple[dict[str, Any], int]:
    """Claude's `thinking` for IR reasoning, and a max_tokens that leaves room above the budget."""
    if is_off(r):
        return {"type": "disabled"}, max_tokens
    if r.adaptive and r.budget in (None, -1):
        return {"type": "adaptive"}, max_tokens
    budget = max(1024, budget_for(r))  # Claude's minimum budget
    return {"type": "enabled", "budget_tokens": budget}, max(max_tokens, budget + 4096)


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a Claude body."""
    body["thinking"], body["max_tokens"] = thinking_for(r, as_int(body.get("max_tokens")) or DEFAULT_MAX_TOKENS)
    if body["thinking"]["type"] != "disabled":
        for key in ("temperature", "top_p", "top_k"):
            body.pop(key, None)


def _lost_thinking(messages: list[dict[str, Any]]) -> bool:
    for m in reversed(messages):
        if m["role"] == "assistant":
            blocks = m["content"]
            has_tool = any(b["type"] == "tool_use" for b in blocks)
            return has_tool and blocks[0]["type"] not in ("thinking", "redacted_thinking")
    return False


# ---- non-stream responses ------------------------------------------------------------------------


def _usage_in(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    cached = as_int(u.get("cache_read_input_tokens"))
    created = as_int(u.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=as_int(u.get("input_tokens")) + cached + created,
        output_tokens=as_int(u.get("output_tokens")),
        cached_tokens=cached,
        cache_creation_tokens=created,
    )


def _usage_out(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": max(0, u.input_tokens - u.cached_tokens - u.cache_creation_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    }


def decode_response(body: dict[str, Any]) -> Response:
    """A Messages response as IR."""
    parts = _blocks_in(body.get("content"))
    return Response(
        id=body.get("id") or ir.new_id("msg_"),
        model=body.get("model") or "",
        parts=parts,
        stop_reason=_STOP_IN.get(body.get("stop_reason") or "end_turn", "stop"),
        usage=_usage_in(body.get("usage")),
    )


def _response_block(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, ToolCallPart):
        try:
            args = jsonio.loads(p.arguments) if p.arguments else {}
        except ValueError:
            args = {}
        return {"type": "tool_use", "id": p.id, "name": p.name, "input": args}
    if isinstance(p, ThinkingPart):
        if p.redacted:
            return {"type": "redacted_thinking", "data": p.signature or ""} if p.family == "claude" else None
        sig = wrap(p.family, p.signature, native="claude") if p.signature else ""
        return {"type": "thinking", "thinking": p.text, "signature": sig}
    return None


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a Messages response; foreign signatures are wrapped so they can come back to their family."""
    content = [b for b in map(_response_block, resp.parts) if b is not None]
    return {
        "id": resp.id if resp.id.startswith("msg_") else "msg_" + resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": _STOP_OUT[resp.stop_reason],
        "stop_sequence": None,
        "usage": _usage_out(resp.usage or Usage()),
    }


def usage_from_response(body: dict[str, Any]) -> Usage | None:
    return _usage_in(body.get("usage"))


def usage_from_event(data: dict[str, Any]) -> Usage | None:
    kind = data.get("type")
    if kind == "message_start":
        return _usage_in((data.get("message") or {}).get("usage"))
    if kind == "message_delta":
        return _usage_in(data.get("usage"))
    return None


# ---- streams -------------------------------------------------------------------------------------


class ClaudeStreamDecoder:
    """Claude SSE → IR events; Claude's block indexes are already what the IR wants."""

    __slots__ = ("_done", "_kinds", "_stop", "usage")

    def __init__(self) -> None:
        self._done = False
        self._stop: StopReason = "stop"
        self._kinds: dict[int, str] = {}
        self.usage: Usage | None = None

    def _merge_usage(self, u: dict[str, Any]) -> Usage:
        prev = self.usage or Usage()
        cached = as_int(u["cache_read_input_tokens"]) if "cache_read_input_tokens" in u else prev.cached_tokens
        created = (
            as_int(u["cache_creation_input_tokens"])
            if "cache_creation_input_tokens" in u
            else prev.cache_creation_tokens
        )
        base = (
            as_int(u["input_tokens"])
            if "input_tokens" in u
            else prev.input_tokens - prev.cached_tokens - (prev.cache_creation_tokens)
        )
        self.usage = Usage(
            input_tokens=base + cached + created,
            output_tokens=as_int(u["output_tokens"]) if "output_tokens" in u else prev.output_tokens,
            cached_tokens=cached,
            cache_creation_tokens=created,
        )
        return self.usage

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
            u = msg.get("usage")
            usage = self._merge_usage(u) if isinstance(u, dict) else None
            return [StreamStart(msg.get("id"), msg.get("model"), usage)]
        if kind == "message_delta":
            delta = d.get("delta") or {}
            sr = delta.get("stop_reason")
            if sr:
                self._stop = _STOP_IN.get(sr, "stop")
            u = d.get("usage")
            return [UsageEvent(self._merge_usage(u))] if isinstance(u, dict) else []
        if kind == "message_stop":
            return self.finish()
        if kind == "error":
            err = d.get("error") or {}
            self._done = True
            status = {"overloaded_error": 529, "rate_limit_error": 429, "invalid_request_error": 400}.get(
                str(err.get("type")), 500
            )
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
            "usage": _usage_out(usage or Usage()),
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
            block = {"type": "tool_use", "id": ev.id, "name": ev.name, "input": {}}
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
            "delta": {"stop_reason": _STOP_OUT[stop], "stop_sequence": None},
            "usage": _usage_out(usage),
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
        return stream_error_frame(Dialect.CLAUDE, status, message)


CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=ClaudeStreamDecoder,
    stream_encoder=ClaudeStreamEncoder,
    usage_from_response=usage_from_response,
    usage_from_event=usage_from_event,
    set_reasoning=set_reasoning,
)
