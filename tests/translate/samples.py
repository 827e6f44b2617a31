"""Client requests in each dialect: a plain text turn and a tool-call round trip (call + result)."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.ir import Request, TextPart, ToolCallPart, ToolResultPart

Canonical = tuple[str, list[tuple[str, list[tuple[Any, ...]]]]]

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
GEMINI_SCHEMA = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}


def text_request(dialect: Dialect) -> dict[str, Any]:
    if dialect is Dialect.CHAT:
        return {
            "model": "m",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "max_tokens": 64,
            "temperature": 0.2,
        }
    if dialect is Dialect.RESPONSES:
        return {"model": "m", "instructions": "be brief", "input": "hi", "max_output_tokens": 64, "temperature": 0.2}
    if dialect is Dialect.CLAUDE:
        return {
            "model": "m",
            "system": "be brief",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 64,
            "temperature": 0.2,
        }
    return {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}], "role": "user"},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64},
    }


def tool_request(dialect: Dialect) -> dict[str, Any]:
    """weather? → get_weather({"city":"Paris"}) → "sunny", with the tool declared."""
    if dialect is Dialect.CHAT:
        return {
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_fake1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_fake1", "content": "sunny"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "description": "weather", "parameters": WEATHER_SCHEMA},
                }
            ],
        }
    if dialect is Dialect.RESPONSES:
        return {
            "model": "m",
            "input": [
                {"role": "user", "content": "weather?"},
                {
                    "type": "function_call",
                    "call_id": "call_fake1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call_output", "call_id": "call_fake1", "output": "sunny"},
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "weather",
                    "parameters": WEATHER_SCHEMA,
                    "strict": False,
                }
            ],
        }
    if dialect is Dialect.CLAUDE:
        return {
            "model": "m",
            "max_tokens": 64,
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_fake1", "name": "get_weather", "input": {"city": "Paris"}}
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_fake1", "content": "sunny"}],
                },
            ],
            "tools": [{"name": "get_weather", "description": "weather", "input_schema": WEATHER_SCHEMA}],
        }
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}],
            },
        ],
        "tools": [
            {"functionDeclarations": [{"name": "get_weather", "description": "weather", "parameters": GEMINI_SCHEMA}]}
        ],
    }


def canonical(req: Request) -> Canonical:
    """What must survive, independent of each wire's grouping: roles, texts, calls, results by call."""
    calls: dict[str, tuple[str, Any]] = {}
    turns: list[tuple[str, list[tuple[Any, ...]]]] = []
    for m in req.messages:
        items: list[tuple[Any, ...]] = []
        for p in m.parts:
            if isinstance(p, TextPart):
                if items and items[-1][0] == "text":
                    items[-1] = ("text", items[-1][1] + p.text)
                else:
                    items.append(("text", p.text))
            elif isinstance(p, ToolCallPart):
                calls[p.id] = (p.name, jsonio.loads(p.arguments))
                items.append(("call", p.name, jsonio.loads(p.arguments)))
            elif isinstance(p, ToolResultPart):
                name, call_args = calls[p.call_id]
                text = "".join(x.text for x in p.content if isinstance(x, TextPart))
                items.append(("result", name, call_args, text))
        if turns and turns[-1][0] == m.role:
            turns[-1][1].extend(items)
        else:
            turns.append((m.role, items))
    return "\n\n".join(p.text for p in req.system), turns
