"""Tool turns a real upstream accepts, through the proxy: results with images, results out of call
order, no empty turns, `tool_choice` only with tools, response formats, web search.

As in test_proxy_upstream_rules, the fake upstream refuses what the real API refuses, and each test
then checks its detail in what the upstream received.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.clients import (
    PNG,
    chat_tool,
    claude_tool,
    received,
    responses_tool,
    send_chat,
    send_claude,
    send_gemini,
    send_responses,
)
from tests.translate.test_proxy_matrix import upstream_config

Upstream = tuple[FakeUpstream, str]
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
SCREENSHOT_CALL = {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}


# ---- 6. tool results that carry images or arrays ---------------------------------------------------


async def send_image_result(proxy: Any, content: list[dict[str, Any]]) -> None:
    await send_claude(
        proxy,
        [
            {"role": "user", "content": "look at the screen"},
            {"role": "assistant", "content": [SCREENSHOT_CALL]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": content}]},
        ],
        tools=[claude_tool("screenshot", {"type": "object", "properties": {}})],
    )


@pytest.mark.parametrize("with_text", [True, False], ids=["text+image", "image-only"])
@pytest.mark.parametrize("target", [Dialect.CHAT, Dialect.RESPONSES, Dialect.GEMINI])
async def test_tool_result_images_are_kept(
    upstream: Upstream, start_proxy: Starter, target: Dialect, with_text: bool
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    content = ([{"type": "text", "text": "the screen"}] if with_text else []) + [IMAGE]
    await send_image_result(proxy, content)
    body = received(fake)
    if target is Dialect.CHAT:
        (tool,) = [m for m in body["messages"] if m["role"] == "tool"]
        assert tool["content"], "an image-only result never becomes an empty string"
        if with_text:
            assert tool["content"] == "the screen"
        after = body["messages"][body["messages"].index(tool) + 1]
        assert after["role"] == "user"
        urls = [p["image_url"]["url"] for p in after["content"] if p["type"] == "image_url"]
        assert urls == [f"data:image/png;base64,{PNG}"]
    elif target is Dialect.RESPONSES:
        (out,) = [i for i in body["input"] if i.get("type") == "function_call_output"]
        images = [p for p in out["output"] if p["type"] == "input_image"]
        assert [p["image_url"] for p in images] == [f"data:image/png;base64,{PNG}"]
        assert [p["text"] for p in out["output"] if p["type"] == "input_text"] == (["the screen"] if with_text else [])
    else:
        parts = body["contents"][-1]["parts"]
        assert "functionResponse" in parts[0]
        assert [p["inlineData"] for p in parts if "inlineData" in p] == [{"mimeType": "image/png", "data": PNG}]


async def test_array_tool_output_is_not_flattened_to_nothing(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CLAUDE, base))
    output = [
        {"type": "input_text", "text": "two files:"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
    ]
    await send_responses(
        proxy,
        [
            {"role": "user", "content": "look"},
            {"type": "function_call", "call_id": "call_1", "name": "screenshot", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": output},
        ],
        tools=[responses_tool("screenshot", {"type": "object", "properties": {}})],
    )
    body = received(fake)
    (result,) = [b for b in body["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert result["content"] == [{"type": "text", "text": "two files:"}, IMAGE]


# ---- 7. parallel results in another order than the calls ------------------------------------------

CALLS = [("call_w", "get_weather", {"city": "Paris"}, "sunny"), ("call_t", "get_time", {"city": "Rome"}, "noon")]


async def send_reversed_results(client: Dialect, proxy: Any) -> None:
    if client is Dialect.CHAT:
        calls = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for cid, name, args, _ in CALLS
        ]
        await send_chat(
            proxy,
            [
                {"role": "user", "content": "weather and time?"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                *({"role": "tool", "tool_call_id": cid, "content": out} for cid, _, _, out in reversed(CALLS)),
            ],
            tools=[chat_tool("get_weather"), chat_tool("get_time")],
        )
    elif client is Dialect.RESPONSES:
        await send_responses(
            proxy,
            [
                {"role": "user", "content": "weather and time?"},
                *(
                    {"type": "function_call", "call_id": cid, "name": name, "arguments": json.dumps(args)}
                    for cid, name, args, _ in CALLS
                ),
                *(
                    {"type": "function_call_output", "call_id": cid, "output": out}
                    for cid, _, _, out in reversed(CALLS)
                ),
            ],
            tools=[responses_tool("get_weather"), responses_tool("get_time")],
        )
    else:
        await send_claude(
            proxy,
            [
                {"role": "user", "content": "weather and time?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": cid, "name": name, "input": args} for cid, name, args, _ in CALLS
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": cid, "content": out}
                        for cid, _, _, out in reversed(CALLS)
                    ],
                },
            ],
            tools=[claude_tool("get_weather"), claude_tool("get_time")],
        )


def answers(target: Dialect, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(call name, result text) pairs, each result matched to its call the way the target matches them."""
    if target is Dialect.GEMINI:
        contents = body["contents"]
        calls = [p["functionCall"]["name"] for p in contents[-2]["parts"] if "functionCall" in p]
        results = [p["functionResponse"] for p in contents[-1]["parts"] if "functionResponse" in p]
        assert [r["name"] for r in results] == calls, "Gemini pairs responses with calls by position"
        return [(r["name"], r["response"]["content"]) for r in results]
    if target is Dialect.CLAUDE:
        blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
        names = {b["id"]: b["name"] for b in blocks if b["type"] == "tool_use"}
        return sorted((names[b["tool_use_id"]], b["content"]) for b in blocks if b["type"] == "tool_result")
    if target is Dialect.CHAT:
        names = {c["id"]: c["function"]["name"] for m in body["messages"] for c in m.get("tool_calls") or ()}
        return sorted((names[m["tool_call_id"]], m["content"]) for m in body["messages"] if m["role"] == "tool")
    names = {i["call_id"]: i["name"] for i in body["input"] if i.get("type") == "function_call"}
    outputs = [i for i in body["input"] if i.get("type") == "function_call_output"]
    return sorted((names[i["call_id"]], i["output"]) for i in outputs)


REORDERED = [
    (Dialect.CHAT, Dialect.GEMINI),
    (Dialect.RESPONSES, Dialect.GEMINI),
    (Dialect.CLAUDE, Dialect.GEMINI),
    (Dialect.CHAT, Dialect.CLAUDE),
    (Dialect.RESPONSES, Dialect.CLAUDE),
    (Dialect.CLAUDE, Dialect.CHAT),
    (Dialect.CLAUDE, Dialect.RESPONSES),
]


@pytest.mark.parametrize(("client", "target"), REORDERED, ids=[f"{a.value}->{b.value}" for a, b in REORDERED])
async def test_results_out_of_call_order_meet_their_calls(
    upstream: Upstream, start_proxy: Starter, client: Dialect, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    await send_reversed_results(client, proxy)
    got = answers(target, received(fake))
    assert sorted(got) == sorted((name, out) for _, name, _, out in CALLS)


# ---- 8. no empty turns -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", [Dialect.CHAT, Dialect.RESPONSES, Dialect.GEMINI])
async def test_a_thinking_only_turn_is_not_sent_empty(
    upstream: Upstream, start_proxy: Starter, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    thinking = {"type": "thinking", "thinking": "let me think", "signature": "EqQBsig"}
    await send_claude(
        proxy,
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [thinking]},
            {"role": "user", "content": "and now?"},
        ],
    )
    body = received(fake)
    if target is Dialect.CHAT:
        assert [m["role"] for m in body["messages"]] == ["user", "user"]
    elif target is Dialect.RESPONSES:
        assert [i.get("role") for i in body["input"]] == ["user", "user"]
    else:
        assert [c["role"] for c in body["contents"]] == ["user"]


@pytest.mark.parametrize("target", [Dialect.RESPONSES, Dialect.CLAUDE, Dialect.GEMINI])
async def test_empty_content_beside_tool_calls_is_not_sent(
    upstream: Upstream, start_proxy: Starter, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    await send_chat(
        proxy,
        [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=[chat_tool()],
    )
    body = received(fake)
    if target is Dialect.RESPONSES:
        assert [i.get("type", "message") for i in body["input"]] == ["message", "function_call", "function_call_output"]
    elif target is Dialect.CLAUDE:
        assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]
    else:
        assert [list(p) for p in body["contents"][1]["parts"]] == [["functionCall", "thoughtSignature"]]


# ---- 9. tool_choice only with tools, response formats, web search ---------------------------------


@pytest.mark.parametrize("target", [Dialect.CHAT, Dialect.CLAUDE, Dialect.GEMINI])
async def test_tool_choice_is_left_out_without_tools(upstream: Upstream, start_proxy: Starter, target: Dialect) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    await send_responses(proxy, "hi", tools=[], tool_choice="auto")  # as Codex sends it
    body = received(fake)
    assert not {"tool_choice", "toolConfig", "tools"} & set(body)


async def test_tool_choice_is_left_out_without_tools_for_responses(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.RESPONSES, base))
    await send_chat(proxy, [{"role": "user", "content": "hi"}], tool_choice="none")
    assert "tool_choice" not in received(fake)


ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.mark.parametrize("target", [Dialect.RESPONSES, Dialect.CLAUDE, Dialect.GEMINI])
async def test_json_schema_description_survives(upstream: Upstream, start_proxy: Starter, target: Dialect) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    fmt = {"name": "answer", "description": "the final answer", "schema": ANSWER, "strict": True}
    await send_chat(
        proxy, [{"role": "user", "content": "hi"}], response_format={"type": "json_schema", "json_schema": fmt}
    )
    body = received(fake)
    if target is Dialect.RESPONSES:
        assert body["text"]["format"] == {"type": "json_schema", **fmt}
    elif target is Dialect.CLAUDE:
        assert body["output_config"]["format"]["schema"] == {**ANSWER, "description": "the final answer"}
    else:
        assert body["generationConfig"]["responseJsonSchema"] == {**ANSWER, "description": "the final answer"}


async def test_json_schema_description_survives_to_chat(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CHAT, base))
    fmt = {"type": "json_schema", "name": "answer", "description": "the final answer", "schema": ANSWER}
    await send_responses(proxy, "hi", text={"format": fmt})
    js = received(fake)["response_format"]["json_schema"]
    assert (js["name"], js["description"], js["schema"]) == ("answer", "the final answer", ANSWER)


WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


async def test_claude_web_search_maps_to_responses_web_search(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.RESPONSES, base))
    tool = {**WEB_SEARCH, "allowed_domains": ["python.org"]}
    await send_claude(proxy, [{"role": "user", "content": "latest python?"}], tools=[tool])
    assert received(fake)["tools"] == [{"type": "web_search", "filters": {"allowed_domains": ["python.org"]}}]


async def test_claude_web_search_maps_to_google_search(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.GEMINI, base))
    await send_claude(proxy, [{"role": "user", "content": "latest python?"}], tools=[WEB_SEARCH])
    assert received(fake)["tools"] == [{"googleSearch": {}}]


@pytest.mark.parametrize(
    ("target", "tool"),
    [(Dialect.CHAT, WEB_SEARCH), (Dialect.RESPONSES, {**WEB_SEARCH, "blocked_domains": ["example.com"]})],
    ids=["chat", "responses-blocked-domains"],
)
async def test_web_search_that_cannot_be_mapped_is_a_clear_400(
    upstream: Upstream, start_proxy: Starter, target: Dialect, tool: dict[str, Any]
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    with pytest.raises(anthropic.BadRequestError) as refused:
        await send_claude(proxy, [{"role": "user", "content": "latest python?"}], tools=[tool])
    assert "web" in str(refused.value.message).lower()
    assert fake.seen == [], "nothing half-mapped reaches the upstream"


async def test_responses_web_search_reaches_claude(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CLAUDE, base))
    await send_responses(proxy, "latest python?", tools=[{"type": "web_search"}])
    assert received(fake)["tools"] == [{"type": "web_search_20250305", "name": "web_search"}]


async def test_gemini_google_search_reaches_responses(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.RESPONSES, base))
    contents = [types.Content(role="user", parts=[types.Part(text="latest python?")])]
    await send_gemini(proxy, contents, tools=[types.Tool(google_search=types.GoogleSearch())])
    assert received(fake)["tools"] == [{"type": "web_search"}]
