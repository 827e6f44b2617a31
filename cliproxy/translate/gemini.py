"""Google generateContent ⇄ IR: contents/parts, upper-case schemas, `data:`-only streams (no `[DONE]`).

Gemini has no tool-call ids: the decoder synthesises `call_<hex>` ids and pairs each
`functionResponse` with the oldest unanswered call of the same name. The model lives in the URL.
"""

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
from cliproxy.translate.reasoning import EFFORT_BUDGET, effort_for, is_off
from cliproxy.translate.sse import SSEEvent

# Gemini 3 rejects replayed function calls without a thought signature; this documented value tells
# it to skip the check for history that came from another model family.
SKIP_SIGNATURE = "skip_thought_signature_validator"

_FINISH_IN: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_FINISH_OUT: dict[str, str] = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}

# JSON-schema keys Gemini's OpenAPI-subset `Schema` accepts; anything else is a 400.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """google-genai sends snake_case keys in places (thinkingConfig); accept both spellings."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}


def schema_to_gemini(schema: Any) -> Any:
    """JSON schema → Gemini Schema: upper-case types, `nullable` for `["x","null"]`, unknown keys dropped.

    Gemini answers 400 to anything outside its OpenAPI subset (`$schema`, `additionalProperties`,
    `const`, `format: uri`, a `{"type": "null"}` branch…), which tool schemas from Claude Code and
    Codex routinely contain.
    """
    if isinstance(schema, list):
        return [schema_to_gemini(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "type":
            if isinstance(v, list):
                kinds = [t for t in v if t != "null"]
                if len(kinds) < len(v):
                    out["nullable"] = True
                v = kinds[0] if kinds else "string"
            out["type"] = str(v).upper()
        elif k == "properties" and isinstance(v, dict):
            out["properties"] = {name: schema_to_gemini(s) for name, s in v.items()}
        elif k == "items":
            out[k] = schema_to_gemini(v)
        elif k in ("anyOf", "oneOf") and isinstance(v, list):
            branches = [b for b in v if not (isinstance(b, dict) and b.get("type") == "null")]
            if len(branches) < len(v):
                out["nullable"] = True
            if len(branches) == 1:
                out.update(schema_to_gemini(branches[0]))
            elif branches:
                out["anyOf"] = schema_to_gemini(branches)
        elif k == "const":
            out["enum"] = [str(v)]
        elif k == "enum" and isinstance(v, list):
            out["enum"] = [str(e) for e in v]
        elif k in _SCHEMA_KEYS:
            out[k] = v
    if "enum" in out:
        out["type"] = "STRING"  # Gemini only takes enums of strings
    fmt = out.get("format")
    if fmt is not None and fmt not in _FORMATS.get(out.get("type", ""), ()):
        del out["format"]
    if out.get("type") == "OBJECT" and "required" in out and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


def schema_from_gemini(schema: Any) -> Any:
    """Gemini Schema → JSON schema: lower-case types (the other dialects reject `OBJECT`)."""
    if isinstance(schema, list):
        return [schema_from_gemini(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "type" and isinstance(v, str):
            out["type"] = v.lower()
        elif k == "properties" and isinstance(v, dict):
            out["properties"] = {name: schema_from_gemini(s) for name, s in v.items()}
        elif k in ("items", "anyOf"):
            out[k] = schema_from_gemini(v)
        elif k not in ("propertyOrdering", "nullable"):
            out[k] = v
    return out


# ---- requests ------------------------------------------------------------------------------------


class _CallIds:
    """Synthesised ids for id-less function calls, matched to responses by name, first in first out."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, list[str]] = {}

    def call(self, name: str, given: str | None) -> str:
        cid = given or ir.new_id("call_")
        self._pending.setdefault(name, []).append(cid)
        return cid

    def result(self, name: str, given: str | None) -> str:
        queue = self._pending.get(name)
        if given:
            if queue and given in queue:
                queue.remove(given)
            return given
        return queue.pop(0) if queue else ir.new_id("call_")


def _parts_in(raw: Any, ids: _CallIds) -> list[Part]:
    parts: list[Part] = []
    for p in raw or ():
        sig = _get(p, "thoughtSignature", "thought_signature")
        if "text" in p:
            if p.get("thought"):
                parts.append(ThinkingPart(p["text"] or "", sig, "gemini"))
            else:
                parts.append(TextPart(p["text"] or ""))
            continue
        fc = _get(p, "functionCall", "function_call")
        if fc is not None:
            name = fc.get("name") or ""
            args = jsonio.dumps(fc.get("args") or {}).decode()
            parts.append(ToolCallPart(ids.call(name, fc.get("id")), name, args, sig, "gemini" if sig else None))
            continue
        fr = _get(p, "functionResponse", "function_response")
        if fr is not None:
            name = fr.get("name") or ""
            resp = fr.get("response")
            if isinstance(resp, dict) and set(resp) <= {"content", "result", "output"} and len(resp) == 1:
                value = next(iter(resp.values()))
                text = value if isinstance(value, str) else jsonio.dumps(value).decode()
            else:
                text = jsonio.dumps(resp).decode() if resp is not None else ""
            parts.append(ToolResultPart(ids.result(name, fr.get("id")), [TextPart(text)], name=name))
            continue
        inline = _get(p, "inlineData", "inline_data")
        if inline is not None:
            parts.append(ImagePart(data=inline.get("data"), media_type=_get(inline, "mimeType", "mime_type")))
            continue
        fd = _get(p, "fileData", "file_data")
        if fd is not None:
            parts.append(ImagePart(url=_get(fd, "fileUri", "file_uri"), media_type=_get(fd, "mimeType", "mime_type")))
    return parts


def decode_request(body: dict[str, Any]) -> Request:
    """A generateContent body as IR; camelCase and snake_case keys are both read, call ids synthesised."""
    req = Request(model=body.get("model") or "")
    si = _get(body, "systemInstruction", "system_instruction")
    if isinstance(si, str):
        req.system.append(TextPart(si))
    elif isinstance(si, dict):
        req.system.extend(TextPart(p.get("text") or "") for p in si.get("parts") or () if "text" in p)
    ids = _CallIds()
    for c in body.get("contents") or ():
        role: ir.Role = "assistant" if c.get("role") == "model" else "user"
        parts = _parts_in(c.get("parts"), ids)
        if req.messages and req.messages[-1].role == role:
            req.messages[-1].parts.extend(parts)
        else:
            req.messages.append(Message(role, parts))
    for t in body.get("tools") or ():
        for fd in _get(t, "functionDeclarations", "function_declarations") or ():
            params = fd.get("parametersJsonSchema") or fd.get("parameters_json_schema")
            if params is None:
                params = schema_from_gemini(fd.get("parameters") or {})
            req.tools.append(Tool(fd.get("name") or "", fd.get("description"), params))
    tcfg = _get(body, "toolConfig", "tool_config")
    if isinstance(tcfg, dict):
        fcc = _get(tcfg, "functionCallingConfig", "function_calling_config") or {}
        mode = (fcc.get("mode") or "").upper()
        allowed = _get(fcc, "allowedFunctionNames", "allowed_function_names") or []
        if mode in ("ANY", "VALIDATED") and len(allowed) == 1:
            req.tool_choice = ToolChoice("tool", allowed[0])
        elif mode == "ANY":
            req.tool_choice = ToolChoice("required")
        elif mode == "NONE":
            req.tool_choice = ToolChoice("none")
        elif mode == "AUTO":
            req.tool_choice = ToolChoice("auto")
    gc = _get(body, "generationConfig", "generation_config") or {}
    req.max_tokens = _get(gc, "maxOutputTokens", "max_output_tokens")
    req.temperature = gc.get("temperature")
    req.top_p = _get(gc, "topP", "top_p")
    req.top_k = _get(gc, "topK", "top_k")
    req.stop = list(_get(gc, "stopSequences", "stop_sequences") or ())
    mime = _get(gc, "responseMimeType", "response_mime_type")
    js = _get(gc, "responseJsonSchema", "response_json_schema") or gc.get("_responseJsonSchema")
    schema = js if js is not None else _get(gc, "responseSchema", "response_schema")
    if schema is not None:
        req.response_format = ResponseFormat("json_schema", js if js is not None else schema_from_gemini(schema))
    elif mime == "application/json":
        req.response_format = ResponseFormat("json_object")
    tc = _get(gc, "thinkingConfig", "thinking_config")
    if isinstance(tc, dict):
        budget = _get(tc, "thinkingBudget", "thinking_budget")
        level = _get(tc, "thinkingLevel", "thinking_level")
        include = _get(tc, "includeThoughts", "include_thoughts")
        r = Reasoning(include_thoughts=include)
        if isinstance(budget, int):
            r.budget = budget
            r.adaptive = budget < 0
            if budget == 0:
                r.effort = "none"
        if isinstance(level, str):
            r.effort = level.lower()
        req.reasoning = r
    return req


def _image_out(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        return {"inlineData": {"mimeType": p.media_type or "image/png", "data": p.data}}
    return {"fileData": {"mimeType": p.media_type or "image/png", "fileUri": p.url or ""}}


def _result_out(p: ToolResultPart, names: dict[str, str]) -> dict[str, Any]:
    text = ir.text_of(p.content)
    name = p.name or names.get(p.call_id) or "tool"
    key = "error" if p.is_error else "content"
    return {"functionResponse": {"name": name, "response": {key: text}}}


def _call_out(p: ToolCallPart) -> dict[str, Any]:
    try:
        args = jsonio.loads(p.arguments) if p.arguments else {}
    except ValueError:
        args = {}
    sig = p.signature if p.family == "gemini" and p.signature else SKIP_SIGNATURE
    return {"functionCall": {"name": p.name, "args": args if isinstance(args, dict) else {}}, "thoughtSignature": sig}


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a generateContent body (no model: it goes in the URL); tool results answer by name."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for m in req.messages:
        role = "model" if m.role == "assistant" else "user"
        parts: list[dict[str, Any]] = []
        for p in m.parts:
            if isinstance(p, TextPart):
                if p.text:
                    parts.append({"text": p.text})
            elif isinstance(p, ToolCallPart):
                names[p.id] = p.name
                parts.append(_call_out(p))
            elif isinstance(p, ToolResultPart):
                parts.append(_result_out(p, names))
            elif isinstance(p, ImagePart):
                parts.append(_image_out(p))
            elif isinstance(p, ThinkingPart) and p.family == "gemini" and p.signature and not p.redacted:
                parts.append({"text": p.text, "thought": True, "thoughtSignature": p.signature})
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": p.text} for p in req.system]}
    if req.tools:
        decls = []
        for t in req.tools:
            decl: dict[str, Any] = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            if t.parameters and t.parameters.get("properties"):
                decl["parameters"] = schema_to_gemini(t.parameters)
            decls.append(decl)
        body["tools"] = [{"functionDeclarations": decls}]
    tc = req.tool_choice
    if tc is not None:
        fcc: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[tc.mode]}
        if tc.mode == "tool" and tc.name:
            fcc["allowedFunctionNames"] = [tc.name]
        body["toolConfig"] = {"functionCallingConfig": fcc}
    gc: dict[str, Any] = {}
    if req.max_tokens is not None:
        gc["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        gc["temperature"] = req.temperature
    if req.top_p is not None:
        gc["topP"] = req.top_p
    if req.top_k is not None:
        gc["topK"] = req.top_k
    if req.stop:
        gc["stopSequences"] = req.stop[:5]
    rf = req.response_format
    if rf is not None and rf.kind != "text":
        gc["responseMimeType"] = "application/json"
        if rf.kind == "json_schema" and rf.schema:
            gc["responseJsonSchema"] = rf.schema
    r = req.reasoning
    if r is not None:
        gc["thinkingConfig"] = _thinking_out(r, req.model)
    if gc:
        body["generationConfig"] = gc
    return body


def _thinking_out(r: Reasoning, model: str) -> dict[str, Any]:
    """Gemini 3 takes a level, Gemini 2.5 a budget (`-1` = dynamic, `0` = off where allowed)."""
    out: dict[str, Any] = {}
    if is_off(r):
        out["thinkingBudget"] = 0
        return out
    if "gemini-3" in model and r.budget is None and r.effort:
        out["thinkingLevel"] = "low" if r.effort in ("minimal", "low") else "high"
    elif r.budget is not None:
        out["thinkingBudget"] = r.budget
    elif r.adaptive:
        out["thinkingBudget"] = -1
    else:
        out["thinkingBudget"] = EFFORT_BUDGET.get(effort_for(r) or "medium", 8192)
    if r.include_thoughts is not None:
        out["includeThoughts"] = r.include_thoughts
    elif r.summary not in (None, "none"):
        out["includeThoughts"] = True
    return out


# ---- non-stream responses ------------------------------------------------------------------------


def _usage_in(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    thoughts = as_int(u.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=as_int(u.get("promptTokenCount")) + as_int(u.get("toolUsePromptTokenCount")),
        output_tokens=as_int(u.get("candidatesTokenCount")) + thoughts,
        cached_tokens=as_int(u.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _usage_out(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens - u.reasoning_tokens,
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        out["cachedContentTokenCount"] = u.cached_tokens
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    return out


def decode_response(body: dict[str, Any]) -> Response:
    """A GenerateContentResponse as IR; STOP with function calls means a tool-call stop."""
    cands = body.get("candidates") or [{}]
    cand = cands[0]
    parts = _parts_in((cand.get("content") or {}).get("parts"), _CallIds())
    stop = _FINISH_IN.get(cand.get("finishReason") or "STOP", "stop")
    if stop == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_calls"
    return Response(
        id=body.get("responseId") or ir.new_id(""),
        model=body.get("modelVersion") or "",
        parts=parts,
        stop_reason=stop,
        usage=_usage_in(body.get("usageMetadata")),
    )


def _part_out(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"text": p.text}
    if isinstance(p, ToolCallPart):
        try:
            args = jsonio.loads(p.arguments) if p.arguments else {}
        except ValueError:
            args = {}
        out: dict[str, Any] = {"functionCall": {"id": p.id, "name": p.name, "args": args}}
        if p.family == "gemini" and p.signature:
            out["thoughtSignature"] = p.signature
        return out
    if isinstance(p, ThinkingPart) and not p.redacted:
        part: dict[str, Any] = {"text": p.text, "thought": True}
        if p.family == "gemini" and p.signature:
            part["thoughtSignature"] = p.signature
        return part
    return None


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a GenerateContentResponse."""
    parts = [o for o in map(_part_out, resp.parts) if o is not None]
    out: dict[str, Any] = {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": _FINISH_OUT[resp.stop_reason], "index": 0}
        ],
        "modelVersion": resp.model,
        "responseId": resp.id,
    }
    if resp.usage is not None:
        out["usageMetadata"] = _usage_out(resp.usage)
    return out


def usage_from_response(body: dict[str, Any]) -> Usage | None:
    return _usage_in(body.get("usageMetadata"))


usage_from_event = usage_from_response  # every stream chunk is a GenerateContentResponse


# ---- streams -------------------------------------------------------------------------------------


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
                self._stop = _FINISH_IN.get(fr, "stop")
        usage = _usage_in(d.get("usageMetadata"))
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
            chunk["usageMetadata"] = _usage_out(usage)
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
            return out + self._frame(None, _FINISH_OUT[ev.stop_reason], ev.usage or self._usage or Usage())
        if isinstance(ev, ErrorEvent):
            return self.error(ev.status, ev.message)
        return b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self.encode(Finish("stop", self._usage))

    def error(self, status: int, message: str) -> bytes:
        self._done = True
        return stream_error_frame(Dialect.GEMINI, status, message)


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a Gemini body."""
    key = "generation_config" if "generation_config" in body and "generationConfig" not in body else "generationConfig"
    gc = body.get(key)
    if not isinstance(gc, dict):
        gc = body[key] = {}
    old = _get(gc, "thinkingConfig", "thinking_config")
    gc.pop("thinking_config", None)
    tc = _thinking_out(r, model)
    if isinstance(old, dict) and "includeThoughts" not in tc:
        include = _get(old, "includeThoughts", "include_thoughts")
        if include is not None:
            tc["includeThoughts"] = include
    gc["thinkingConfig"] = tc


CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=GeminiStreamDecoder,
    stream_encoder=GeminiStreamEncoder,
    usage_from_response=usage_from_response,
    usage_from_event=usage_from_event,
    set_reasoning=set_reasoning,
)
