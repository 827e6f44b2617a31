"""Translated requests a real upstream accepts: system placement, tool ids, tool names, tool schemas.

Each test sends a request with an official SDK through the running proxy to a fake upstream of
another dialect. The fake checks the request the way the real API does (`tests/fakes/wire_rules.py`)
and answers 400 to what the real API would refuse; `received` fails the test on any such refusal,
then the test checks the detail it is about in what the upstream received.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.clients import (
    anthropic_client,
    chat_tool,
    claude_tool,
    gemini_tool,
    received,
    responses_tool,
    send_chat,
    send_claude,
    send_gemini,
    send_responses,
)
from tests.translate.test_proxy_matrix import MODEL, upstream_config

Upstream = tuple[FakeUpstream, str]
ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]+")
OPENAI_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def claude_system(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else "".join(b["text"] for b in system)


def texts_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


# ---- 1. system placement ---------------------------------------------------------------------------


@pytest.mark.parametrize("client", [Dialect.CHAT, Dialect.RESPONSES])
async def test_mid_conversation_system_reaches_claude_outside_messages(
    upstream: Upstream, start_proxy: Starter, client: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CLAUDE, base))
    if client is Dialect.CHAT:
        await send_chat(
            proxy,
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "mid rule"},
                {"role": "user", "content": "again"},
            ],
        )
    else:
        await send_responses(
            proxy,
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "developer", "content": "mid rule"},
                {"role": "user", "content": "again"},
            ],
            instructions="be brief",
        )
    body = received(fake)
    assert {m["role"] for m in body["messages"]} == {"user", "assistant"}
    assert "be brief" in claude_system(body) and "mid rule" in claude_system(body)
    assert [texts_of(m["content"]) for m in body["messages"]] == ["hi", "hello", "again"]


@pytest.mark.parametrize("target", [Dialect.CLAUDE, Dialect.GEMINI])
@pytest.mark.parametrize("client", [Dialect.CHAT, Dialect.RESPONSES])
async def test_a_system_prompt_alone_still_sends_one_user_turn(
    upstream: Upstream, start_proxy: Starter, client: Dialect, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    if client is Dialect.CHAT:
        await send_chat(proxy, [{"role": "system", "content": "Say hello in French."}])
    else:
        await send_responses(proxy, [{"role": "developer", "content": "Say hello in French."}])
    body = received(fake)
    if target is Dialect.CLAUDE:
        assert [(m["role"], texts_of(m["content"])) for m in body["messages"]] == [("user", "Say hello in French.")]
    else:
        parts = body["contents"][0]["parts"]
        assert [(c["role"], len(c["parts"])) for c in body["contents"]] == [("user", 1)]
        assert parts[0]["text"] == "Say hello in French."


# ---- 2. tool-call ids Claude refuses ---------------------------------------------------------------

KIMI_IDS = ["functions.get_weather:0", "functions.get_weather:1"]  # the id style of Kimi and others


async def send_foreign_ids(client: Dialect, proxy: Any) -> None:
    args = [{"city": "Paris"}, {"city": "Rome"}]
    if client is Dialect.CHAT:
        calls = [
            {"id": cid, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(a)}}
            for cid, a in zip(KIMI_IDS, args, strict=True)
        ]
        await send_chat(
            proxy,
            [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                *({"role": "tool", "tool_call_id": cid, "content": "sunny"} for cid in KIMI_IDS),
            ],
            tools=[chat_tool()],
        )
    elif client is Dialect.RESPONSES:
        await send_responses(
            proxy,
            [
                {"role": "user", "content": "weather?"},
                *(
                    {"type": "function_call", "call_id": cid, "name": "get_weather", "arguments": json.dumps(a)}
                    for cid, a in zip(KIMI_IDS, args, strict=True)
                ),
                *({"type": "function_call_output", "call_id": cid, "output": "sunny"} for cid in KIMI_IDS),
            ],
            tools=[responses_tool()],
        )
    else:
        calls = [
            types.Part(function_call=types.FunctionCall(id=cid, name="get_weather", args=a))
            for cid, a in zip(KIMI_IDS, args, strict=True)
        ]
        results = [
            types.Part(function_response=types.FunctionResponse(id=cid, name="get_weather", response={"r": "sunny"}))
            for cid in KIMI_IDS
        ]
        await send_gemini(
            proxy,
            [
                types.Content(role="user", parts=[types.Part(text="weather?")]),
                types.Content(role="model", parts=calls),
                types.Content(role="user", parts=results),
            ],
            tools=[gemini_tool()],
        )


@pytest.mark.parametrize("client", [Dialect.CHAT, Dialect.RESPONSES, Dialect.GEMINI])
async def test_tool_ids_claude_refuses_are_rewritten_consistently(
    upstream: Upstream, start_proxy: Starter, client: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CLAUDE, base))
    await send_foreign_ids(client, proxy)
    first = received(fake)
    await send_foreign_ids(client, proxy)  # the next turn re-sends the same history
    again = received(fake)
    blocks = [b for m in first["messages"] if isinstance(m["content"], list) for b in m["content"]]
    calls = [b["id"] for b in blocks if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
    assert len(set(calls)) == 2 and all(ANTHROPIC_ID.fullmatch(c) for c in calls)
    assert results == calls
    assert again["messages"] == first["messages"]


# ---- 3. tool names longer than OpenAI's and Gemini's 64 characters --------------------------------

LONG = "mcp__acme-enterprise-knowledge-base-connector__search_documents_by_semantic_similarity"
LONG_TWIN = "mcp__acme-enterprise-knowledge-base-connector__search_documents_by_semantic_similarity_v2"


def offered_names(target: Dialect, body: dict[str, Any]) -> list[str]:
    if target is Dialect.CHAT:
        return [t["function"]["name"] for t in body["tools"]]
    if target is Dialect.RESPONSES:
        return [t["name"] for t in body["tools"]]
    return [d["name"] for d in body["tools"][0]["functionDeclarations"]]


def call_answer(target: Dialect, name: str) -> dict[str, Any]:
    """The target's non-stream answer calling tool `name`."""
    if target is Dialect.CHAT:
        call = {"id": "call_up1", "type": "function", "function": {"name": name, "arguments": '{"q":"x"}'}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        }
    if target is Dialect.RESPONSES:
        item = {"type": "function_call", "id": "fc_1", "call_id": "call_up1", "name": name, "arguments": '{"q":"x"}'}
        return {"id": "resp_1", "object": "response", "status": "completed", "model": "m", "output": [item]}
    part = {"functionCall": {"name": name, "args": {"q": "x"}}}
    return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}


@pytest.mark.parametrize("target", [Dialect.CHAT, Dialect.RESPONSES, Dialect.GEMINI])
async def test_long_tool_names_are_shortened_and_restored(
    upstream: Upstream, start_proxy: Starter, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    fake.answer = lambda sent: call_answer(target, offered_names(target, sent)[0])
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    message = await send_claude(
        proxy,
        [
            {"role": "user", "content": "find x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": LONG, "input": {"q": "a"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "nothing"}]},
        ],
        tools=[claude_tool(LONG, schema), claude_tool(LONG_TWIN, schema)],
        tool_choice={"type": "tool", "name": LONG},
    )
    body = received(fake)
    short, twin = offered_names(target, body)
    assert short != twin and len(short) <= 64 and len(twin) <= 64
    assert OPENAI_NAME.fullmatch(short) and OPENAI_NAME.fullmatch(twin)
    if target is Dialect.CHAT:
        assert body["tool_choice"] == {"type": "function", "function": {"name": short}}
        assert body["messages"][1]["tool_calls"][0]["function"]["name"] == short
    elif target is Dialect.RESPONSES:
        assert body["tool_choice"] == {"type": "function", "name": short}
        assert [i["name"] for i in body["input"] if i.get("type") == "function_call"] == [short]
    else:
        assert body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == [short]
        parts = [p for c in body["contents"] for p in c["parts"]]
        assert [p["functionCall"]["name"] for p in parts if "functionCall" in p] == [short]
        assert [p["functionResponse"]["name"] for p in parts if "functionResponse" in p] == [short]
    # the client sees the name it declared
    assert [b.name for b in message.content if b.type == "tool_use"] == [LONG]


async def test_long_tool_names_are_restored_in_streams(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.RESPONSES, base))

    def stream(sent: Any) -> bytes:
        name = sent["tools"][0]["name"]
        item = {"type": "function_call", "id": "fc_1", "call_id": "call_up1", "name": name, "arguments": ""}
        done = {**item, "arguments": '{"q":"x"}', "status": "completed"}
        events = [
            {"type": "response.created", "response": {"id": "resp_1", "model": "m", "output": []}},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"q":"x"}'},
            {"type": "response.output_item.done", "output_index": 0, "item": done},
            {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": [done]}},
        ]
        return b"".join(
            b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events
        )

    fake.stream_body = stream
    messages: list[Any] = [{"role": "user", "content": "find x"}]
    tools: list[Any] = [claude_tool(LONG)]
    async with anthropic_client(proxy).messages.stream(model=MODEL, max_tokens=64, messages=messages, tools=tools) as s:
        message = await s.get_final_message()
    assert len(received(fake)["tools"][0]["name"]) <= 64
    assert [(b.name, b.input) for b in message.content if b.type == "tool_use"] == [(LONG, {"q": "x"})]


# ---- 4. tool schemas with a root combinator --------------------------------------------------------

EITHER = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"path": {"type": "string"}, "line": {"type": "integer"}},
            "required": ["path"],
        },
        {"type": "object", "properties": {"url": {"type": "string"}, "line": {"type": "integer"}}, "required": ["url"]},
    ],
    "description": "a file by path or by URL",
}


async def send_schema(client: Dialect, proxy: Any) -> None:
    if client is Dialect.CHAT:
        await send_chat(proxy, [{"role": "user", "content": "open it"}], tools=[chat_tool("open_file", EITHER)])
    elif client is Dialect.RESPONSES:
        await send_responses(proxy, "open it", tools=[responses_tool("open_file", EITHER)])
    elif client is Dialect.GEMINI:
        contents = [types.Content(role="user", parts=[types.Part(text="open it")])]
        await send_gemini(proxy, contents, tools=[gemini_tool("open_file", EITHER)])
    else:
        await send_claude(proxy, [{"role": "user", "content": "open it"}], tools=[claude_tool("open_file", EITHER)])


def schema_received(target: Dialect, body: dict[str, Any]) -> dict[str, Any]:
    if target is Dialect.CLAUDE:
        schema: dict[str, Any] = body["tools"][0]["input_schema"]
    elif target is Dialect.CHAT:
        schema = body["tools"][0]["function"]["parameters"]
    elif target is Dialect.RESPONSES:
        schema = body["tools"][0]["parameters"]
    else:
        schema = body["tools"][0]["functionDeclarations"][0]["parameters"]
    return schema


SCHEMA_PAIRS = [(a, b) for a in Dialect for b in Dialect if a is not b]


@pytest.mark.parametrize(("client", "target"), SCHEMA_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in SCHEMA_PAIRS])
async def test_root_combinator_schemas_become_objects_without_losing_properties(
    upstream: Upstream, start_proxy: Starter, client: Dialect, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    await send_schema(client, proxy)
    schema = schema_received(target, received(fake))
    assert str(schema["type"]).lower() == "object"
    assert not {"anyOf", "oneOf", "allOf"} & set(schema)
    assert set(schema["properties"]) == {"path", "url", "line"}
    assert not schema.get("required")  # neither path nor url is needed by every alternative
    assert schema["description"] == "a file by path or by URL"
