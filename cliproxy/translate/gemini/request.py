"""generateContent requests ⇄ IR: contents, tools and settings, camelCase or snake_case.

The model lives in the URL. A conversation that is only a system prompt is sent as one user turn
(Gemini needs contents). Google Search is Gemini's provider-run web search; it is sent for a
request whose only tool is web search, and left out when offered among function tools, which
Gemini 2.x cannot combine with it.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translate import ir
from cliproxy.translate.gemini.parts import SKIP_SIGNATURE, CallIds, contents_out, parts_in
from cliproxy.translate.gemini.parts import get as _get
from cliproxy.translate.gemini.schema import schema_from_gemini, schema_to_gemini
from cliproxy.translate.ir import (
    Message,
    Reasoning,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
    ToolChoice,
    Untranslatable,
    WebSearch,
)
from cliproxy.translate.reasoning import EFFORT_BUDGET, effort_for, is_off
from cliproxy.translate.tool_schema import object_root

__all__ = ["SKIP_SIGNATURE", "decode_request", "encode_request", "set_reasoning"]


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
        if _get(t, "googleSearch", "google_search") is not None:
            req.web_search = WebSearch()
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


def _tools_out(req: Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if req.tools:
        decls = []
        for t in req.tools:
            decl: dict[str, Any] = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            if t.parameters and (params := object_root(t.parameters)).get("properties"):
                decl["parameters"] = schema_to_gemini(params)
            decls.append(decl)
        tools.append({"functionDeclarations": decls})
    ws = req.web_search
    if ws is not None and not req.tools:  # Gemini 2.x cannot mix Google Search with function calling
        if ws.allowed_domains or ws.blocked_domains:
            raise Untranslatable("web search domain filters have no equivalent in Gemini's Google Search tool")
        tools.append({"googleSearch": {}})
    return tools


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a generateContent body (no model: it goes in the URL); tool results answer by name."""
    contents = contents_out(req.messages)
    system = [{"text": p.text} for p in req.system if p.text]
    if not contents and system:  # only a system prompt: Gemini needs contents to answer
        contents.append({"role": "user", "parts": system})
        system = []
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = _tools_out(req)
    if tools:
        body["tools"] = tools
    tc = req.tool_choice
    if tc is not None and req.tools:  # a function calling config without declarations is a 400
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
            gc["responseJsonSchema"] = rf.described_schema()
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
