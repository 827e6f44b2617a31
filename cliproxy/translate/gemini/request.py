"""generateContent requests ⇄ IR: contents and parts, camelCase or snake_case, thinking settings.

Gemini has no tool-call ids: the decoder synthesises `call_<hex>` ids and pairs each
`functionResponse` with the oldest unanswered call of the same name. The model lives in the URL.
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.gemini.schema import schema_from_gemini, schema_to_gemini
from cliproxy.translate.ir import (
    ImagePart,
    Message,
    Part,
    Reasoning,
    Request,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from cliproxy.translate.reasoning import EFFORT_BUDGET, effort_for, is_off

# Gemini 3 rejects replayed function calls without a thought signature; this documented value tells
# it to skip the check for history that came from another model family.
SKIP_SIGNATURE = "skip_thought_signature_validator"


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """google-genai sends snake_case keys in places (thinkingConfig); accept both spellings."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


class CallIds:
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


def parts_in(raw: Any, ids: CallIds) -> list[Part]:
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
    ids = CallIds()
    for c in body.get("contents") or ():
        role: ir.Role = "assistant" if c.get("role") == "model" else "user"
        parts = parts_in(c.get("parts"), ids)
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
