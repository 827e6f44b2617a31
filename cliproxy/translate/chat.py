"""OpenAI Chat Completions ⇄ IR: requests, responses, `data:` stream chunks ending in `[DONE]`."""

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
from cliproxy.translate.sse import DONE_FRAME, SSEEvent

_FINISH_IN: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_FINISH_OUT: dict[str, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}

# ---- requests ------------------------------------------------------------------------------------


def _content_parts(content: Any) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[TextPart | ImagePart] = []
    if isinstance(content, list):
        for p in content:
            if not isinstance(p, dict):
                continue
            kind = p.get("type")
            if kind in ("text", "input_text", "output_text"):
                out.append(TextPart(p.get("text") or ""))
            elif kind == "image_url":
                url = p.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if isinstance(url, str):
                    out.append(ImagePart.from_url(url))
            elif kind == "refusal":
                out.append(TextPart(p.get("refusal") or ""))
    return out


def _append(messages: list[Message], role: ir.Role, parts: list[Part]) -> None:
    """Consecutive turns of one role merge (tool results after tool results, for instance)."""
    if messages and messages[-1].role == role and role != "system":
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, parts))


def decode_request(body: dict[str, Any]) -> Request:
    """A chat body as IR; leading system/developer messages are the system prompt, later ones stay in place."""
    req = Request(model=body.get("model") or "")
    leading = True
    for m in body.get("messages") or ():
        role = m.get("role")
        content = m.get("content")
        if role in ("system", "developer"):
            texts: list[TextPart] = [p for p in _content_parts(content) if isinstance(p, TextPart)]
            if leading:
                req.system.extend(texts)
            else:
                req.messages.append(Message("system", list(texts)))
            continue
        leading = False
        if role == "tool":
            result = ToolResultPart(m.get("tool_call_id") or "", _content_parts(content), name=m.get("name"))
            _append(req.messages, "user", [result])
        elif role == "assistant":
            parts: list[Part] = []
            reasoning = m.get("reasoning_content") or m.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                parts.append(ThinkingPart(reasoning))
            parts.extend(_content_parts(content))
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                args = fn.get("arguments")
                if not isinstance(args, str):
                    args = jsonio.dumps(args or {}).decode()
                parts.append(ToolCallPart(tc.get("id") or ir.new_id("call_"), fn.get("name") or "", args))
            _append(req.messages, "assistant", parts)
        else:
            _append(req.messages, "user", list(_content_parts(content)))
    for t in body.get("tools") or ():
        if t.get("type", "function") == "function" and isinstance(t.get("function"), dict):
            fn = t["function"]
            req.tools.append(Tool(fn.get("name") or "", fn.get("description"), fn.get("parameters") or {}))
    tc_raw = body.get("tool_choice")
    if isinstance(tc_raw, str) and tc_raw in ("auto", "none", "required"):
        req.tool_choice = ToolChoice(tc_raw)  # type: ignore[arg-type]
    elif isinstance(tc_raw, dict):
        name = (tc_raw.get("function") or {}).get("name") or tc_raw.get("name")
        req.tool_choice = ToolChoice("tool", name)
    req.parallel_tool_calls = body.get("parallel_tool_calls")
    req.max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    stop = body.get("stop")
    req.stop = [stop] if isinstance(stop, str) else list(stop or ())
    rf = body.get("response_format")
    if isinstance(rf, dict):
        kind = rf.get("type")
        if kind == "json_schema":
            js = rf.get("json_schema") or {}
            req.response_format = ResponseFormat("json_schema", js.get("schema"), js.get("name"), js.get("strict"))
        elif kind == "json_object":
            req.response_format = ResponseFormat("json_object")
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        req.reasoning = Reasoning(effort=effort)
    req.stream = bool(body.get("stream"))
    req.user = body.get("user")
    md = body.get("metadata")
    req.metadata = md if isinstance(md, dict) else None
    return req


def _content_out(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        else:
            out.append({"type": "image_url", "image_url": {"url": p.as_url()}})
    return out


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a chat body; tool results become `tool` messages, thinking history is dropped (chat cannot replay it)."""
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": "\n\n".join(p.text for p in req.system)})
    for m in req.messages:
        if m.role == "system":
            messages.append({"role": "system", "content": "".join(p.text for p in m.parts if isinstance(p, TextPart))})
        elif m.role == "assistant":
            text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            calls = [
                {
                    "id": ir.short_id(p.id),
                    "type": "function",
                    "function": {"name": p.name, "arguments": p.arguments or "{}"},
                }
                for p in m.parts
                if isinstance(p, ToolCallPart)
            ]
            if calls:
                msg["tool_calls"] = calls
            messages.append(msg)
        else:
            rest: list[TextPart | ImagePart] = []
            for p in m.parts:
                if isinstance(p, ToolResultPart):
                    messages.append(
                        {"role": "tool", "tool_call_id": ir.short_id(p.call_id), "content": ir.text_of(p.content)}
                    )
                elif isinstance(p, TextPart | ImagePart):
                    rest.append(p)
            if rest:
                messages.append({"role": "user", "content": _content_out(rest)})
    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in req.tools
        ]
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice is not None:
        tc = req.tool_choice
        body["tool_choice"] = tc.mode if tc.mode != "tool" else {"type": "function", "function": {"name": tc.name}}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = req.stop
    rf = req.response_format
    if rf is not None and rf.kind != "text":
        if rf.kind == "json_schema":
            js: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                js["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": js}
        else:
            body["response_format"] = {"type": "json_object"}
    if req.reasoning is not None:
        effort = "none" if is_off(req.reasoning) else effort_for(req.reasoning)
        if effort:
            body["reasoning_effort"] = effort
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.user and len(req.user) <= ir.OPENAI_USER_MAX:
        body["user"] = req.user
    return body


# ---- non-stream responses ------------------------------------------------------------------------


def _usage_in(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    pd = u.get("prompt_tokens_details") or {}
    cd = u.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=as_int(u.get("prompt_tokens")),
        output_tokens=as_int(u.get("completion_tokens")),
        cached_tokens=as_int(pd.get("cached_tokens")),
        reasoning_tokens=as_int(cd.get("reasoning_tokens")),
        cache_creation_tokens=as_int(pd.get("cache_creation_tokens")),
    )


def _usage_out(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def decode_response(body: dict[str, Any]) -> Response:
    """A chat completion as IR (first choice; `reasoning_content` from DeepSeek-style providers kept)."""
    choices = body.get("choices") or [{}]
    choice = choices[0]
    msg = choice.get("message") or {}
    parts: list[Part] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(reasoning))
    content = msg.get("content")
    if content:
        parts.extend(_content_parts(content))
    for tc in msg.get("tool_calls") or ():
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = jsonio.dumps(args or {}).decode()
        parts.append(ToolCallPart(tc.get("id") or ir.new_id("call_"), fn.get("name") or "", args))
    stop = _FINISH_IN.get(choice.get("finish_reason") or "stop", "stop")
    if stop == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_calls"
    return Response(
        id=body.get("id") or ir.new_id("chatcmpl-"),
        model=body.get("model") or "",
        parts=parts,
        stop_reason=stop,
        usage=_usage_in(body.get("usage")),
        created=as_int(body.get("created")),
    )


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a chat completion; thinking goes to `reasoning_content`, which the openai SDK tolerates."""
    text = "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    thinking = "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart))
    if thinking:
        msg["reasoning_content"] = thinking
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
        for p in resp.parts
        if isinstance(p, ToolCallPart)
    ]
    if calls:
        msg["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": resp.id if resp.id.startswith("chatcmpl") else "chatcmpl-" + resp.id,
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": resp.model,
        "choices": [{"index": 0, "message": msg, "finish_reason": _FINISH_OUT[resp.stop_reason], "logprobs": None}],
    }
    if resp.usage is not None:
        out["usage"] = _usage_out(resp.usage)
    return out


def usage_from_response(body: dict[str, Any]) -> Usage | None:
    return _usage_in(body.get("usage"))


def usage_from_event(data: dict[str, Any]) -> Usage | None:
    return _usage_in(data.get("usage"))


# ---- streams -------------------------------------------------------------------------------------


class ChatStreamDecoder:
    """Chat chunks → IR events. Chat has no block markers: a block ends when another kind starts."""

    __slots__ = ("_block", "_done", "_next", "_open", "_started", "_stop", "_tools", "usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._next = 0  # next IR block index
        self._open: int | None = None  # the IR block open now
        self._block: str | None = None  # "text" | "thinking" | "tool"
        self._tools: dict[int, int] = {}  # chat tool_calls[].index → IR block
        self._stop: StopReason | None = None
        self.usage: Usage | None = None

    def _switch(self, kind: str, out: list[StreamEvent]) -> int:
        if self._block == kind and self._open is not None:
            return self._open
        if self._open is not None:
            out.append(BlockStop(self._open))
        self._open = self._next
        self._next += 1
        self._block = kind
        return self._open

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
            out.append(ErrorEvent(as_int(err.get("code")) or 500, str(err.get("message") or "upstream error")))
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
                ti = tc.get("index", 0)
                fn = tc.get("function") or {}
                block = self._tools.get(ti)
                if block is None:
                    if self._open is not None:
                        out.append(BlockStop(self._open))
                    block = self._open = self._next
                    self._next += 1
                    self._block = "tool"
                    self._tools[ti] = block
                    out.append(ToolCallStart(block, tc.get("id") or ir.new_id("call_"), fn.get("name") or ""))
                args = fn.get("arguments")
                if args:
                    out.append(ToolArgsDelta(block, args))
            fr = choice.get("finish_reason")
            if fr:
                self._stop = _FINISH_IN.get(fr, "stop")
        usage = _usage_in(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            out.append(UsageEvent(usage))
        return out

    def _finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        out: list[StreamEvent] = []
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
            tail += (b',"usage":' + jsonio.dumps(_usage_out(usage)) if usage is not None else b"") + b"}\n\n"
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
            return pre + self._chunk({}, _FINISH_OUT[ev.stop_reason], ev.usage) + DONE_FRAME
        if isinstance(ev, ErrorEvent):
            return pre + self.error(ev.status, ev.message)
        return pre

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self.encode(Finish("tool_calls" if self._tools else "stop"))

    def error(self, status: int, message: str) -> bytes:
        self._done = True
        return stream_error_frame(Dialect.CHAT, status, message)


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a chat body."""
    effort = "none" if is_off(r) else effort_for(r)
    if effort:
        body["reasoning_effort"] = effort


CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=ChatStreamDecoder,
    stream_encoder=ChatStreamEncoder,
    usage_from_response=usage_from_response,
    usage_from_event=usage_from_event,
    set_reasoning=set_reasoning,
)
