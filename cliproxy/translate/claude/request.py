"""Anthropic Messages requests ⇄ IR: system prompt, turns, tools, thinking settings.

Claude takes only `user` and `assistant` turns: a system entry from the middle of another dialect's
conversation joins the top-level `system` (as CLIProxyAPI's rebuild of mid-conversation system
messages does), and a conversation that is only a system prompt is sent as one user turn.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cliproxy import jsonio
from cliproxy.translate.claude.blocks import EPHEMERAL, blocks_in, blocks_out, text_out
from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import (
    Message,
    Reasoning,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
    ToolChoice,
    WebSearch,
)
from cliproxy.translate.reasoning import budget_for, is_off
from cliproxy.translate.tool_schema import object_root

DEFAULT_MAX_TOKENS = 8192  # Claude requires max_tokens; other dialects may omit it
WEB_SEARCH_TOOL = "web_search_20250305"


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
        parts = blocks_in(m.get("content"))
        if role == "system":
            req.messages.append(Message("system", [p for p in parts if isinstance(p, TextPart)]))
        else:
            req.messages.append(Message("assistant" if role == "assistant" else "user", parts))
    for t in body.get("tools") or ():
        kind = t.get("type")
        if "input_schema" in t or kind in (None, "custom"):
            req.tools.append(
                Tool(t.get("name") or "", t.get("description"), t.get("input_schema") or {}, "cache_control" in t)
            )
        elif isinstance(kind, str) and kind.startswith("web_search_"):
            req.web_search = WebSearch(
                t.get("allowed_domains"), t.get("blocked_domains"), t.get("user_location"), t.get("max_uses")
            )
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
    if _cached(req):  # for OpenAI targets: the cached prefix (system prompt, first turn) names the cache
        seed = jsonio.dumps([body.get("system"), (body.get("messages") or [None])[0]])
        req.cache_key = "claude-" + hashlib.sha256(seed).hexdigest()[:32]
    return req


def _cached(req: Request) -> bool:
    """Whether any part or tool carries a breakpoint (plain loops: this runs on every translation)."""
    for part in req.system:
        if part.cache:
            return True
    for tool in req.tools:
        if tool.cache:
            return True
    for message in req.messages:
        for p in message.parts:
            if getattr(p, "cache", False):
                return True
    return False


def _results_first(content: list[dict[str, Any]]) -> None:
    """Tool results before any other block of a user turn (turns merged from several IR messages)."""
    seen_other = False
    for block in content:
        if block["type"] != "tool_result":
            seen_other = True
        elif seen_other:
            content.sort(key=lambda b: b["type"] != "tool_result")  # stable: order kept within each group
            return


def _messages_out(req: Request, system: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for m in req.messages:
        if m.role == "system":  # Claude has no system turns: the text joins the top-level system
            system.extend(text_out(p) for p in m.parts if isinstance(p, TextPart) and p.text)
            continue
        blocks = blocks_out(m.parts)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == m.role:
            messages[-1]["content"].extend(blocks)  # Claude wants alternating turns
        else:
            messages.append({"role": m.role, "content": blocks})
    for message in messages:
        if message["role"] == "user":
            _results_first(message["content"])
    if not messages and system:  # only a system prompt: Claude needs a user turn to answer
        messages.append({"role": "user", "content": system[:]})
        system.clear()
    return messages


def _tools_out(req: Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = [
        {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "input_schema": object_root(t.parameters),
            **({"cache_control": EPHEMERAL} if t.cache else {}),
        }
        for t in req.tools
    ]
    ws = req.web_search
    if ws is not None:
        tool: dict[str, Any] = {"type": WEB_SEARCH_TOOL, "name": "web_search"}
        for key, value in (
            ("allowed_domains", ws.allowed_domains),
            ("blocked_domains", ws.blocked_domains),
            ("user_location", ws.user_location),
            ("max_uses", ws.max_uses),
        ):
            if value is not None:
                tool[key] = value
        tools.append(tool)
    return tools


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a Messages body: alternating user/assistant turns, max_tokens always set, only
    Claude-signed thinking replayed."""
    system = [text_out(p) for p in req.system if p.text]
    messages = _messages_out(req, system)
    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.cache_key and not _cached(req):
        _automatic_breakpoints(system, messages)  # OpenAI's `prompt_cache_key`: cache what is stable
    if system:
        body["system"] = system
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
    tools = _tools_out(req) if req.tools or req.web_search is not None else []
    if tools:
        body["tools"] = tools
    tc = req.tool_choice
    if tools and (tc is not None or req.parallel_tool_calls is False):  # a choice without tools is a 400
        mode = tc.mode if tc is not None else "auto"
        choice: dict[str, Any] = {"type": {"required": "any"}.get(mode, mode)}
        if mode == "tool":
            choice["name"] = tc.name if tc is not None else None
        if req.parallel_tool_calls is False and mode != "none":
            choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = choice
    rf = req.response_format
    if rf is not None and rf.kind == "json_schema" and rf.schema:
        body["output_config"] = {"format": {"type": "json_schema", "schema": rf.described_schema()}}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    return body


def _automatic_breakpoints(system: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
    """A client that asked OpenAI to cache (`prompt_cache_key`) gets Claude's equivalent: breakpoints
    after the system prompt and after the conversation so far."""
    if system:
        system[-1]["cache_control"] = EPHEMERAL
    for message in reversed(messages):
        content = message.get("content")
        if isinstance(content, str) and content:
            message["content"] = [{"type": "text", "text": content, "cache_control": EPHEMERAL}]
            return
        if isinstance(content, list) and content:
            last = content[-1]
            if isinstance(last, dict) and last.get("type") not in ("thinking", "redacted_thinking"):
                content[-1] = {**last, "cache_control": EPHEMERAL}
                return


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
