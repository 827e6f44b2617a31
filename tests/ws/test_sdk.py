"""WebSocket mode driven by the official openai SDK (`client.responses.connect()`, openai 2.54)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import websockets

from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.ws.helpers import TERMINAL, TOOL, claude_config, codex_config, compat_config, gemini_config, user

CONFIGS = {"claude": claude_config, "gemini": gemini_config, "openai-compatibility": compat_config}

DEVELOPER = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}


def sdk(proxy: Proxy, key: str = CLIENT_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)


async def until_terminal(conn: Any) -> list[Any]:
    events = []
    async for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            break
    return events


async def test_bad_key_is_refused_with_401_before_the_upgrade(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_config(base))
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with sdk(proxy, "sk-wrong").responses.connect() as conn:
            await conn.response.create(model="gpt-fake", input="hi")
    assert info.value.response.status_code == 401
    assert b"Invalid API key" in info.value.response.body
    assert fake.seen == []


async def test_warm_up_then_three_chained_turns_with_a_tool_call(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    fake.tool_loop = fake.fresh_response_ids = True
    proxy = await start_proxy(codex_config(base))
    async with sdk(proxy).responses.connect() as conn:
        await conn.send(
            {  # Codex's warm-up: the SDK has no `generate` parameter, so the raw frame
                "type": "response.create",
                "model": "gpt-fake",
                "generate": False,
                "input": [DEVELOPER],
                "tools": [TOOL],
                "store": False,
            }  # type: ignore[typeddict-unknown-key]
        )
        warm = await until_terminal(conn)
        assert [e.type for e in warm] == ["response.created", "response.completed"]
        assert warm[-1].response.output == [] and warm[-1].response.id.startswith("resp_prewarm_")
        assert fake.seen == []  # answered locally

        await conn.response.create(previous_response_id=warm[-1].response.id, input=[user("weather in Paris?")])
        first = await until_terminal(conn)
        assert first[-1].type == "response.completed"
        (call,) = first[-1].response.output
        assert call.type == "function_call" and call.name == "get_weather"

        result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky":"clear"}'}
        await conn.response.create(previous_response_id=first[-1].response.id, input=[result])  # type: ignore[list-item]
        second = await until_terminal(conn)
        assert second[-1].type == "response.completed"
        assert "".join(e.delta for e in second if e.type == "response.output_text.delta") == "Hello from fake"

        await conn.response.create(previous_response_id=second[-1].response.id, input="thanks")
        third = await until_terminal(conn)
        assert third[-1].type == "response.completed"

    bodies = [seen.json for seen in fake.seen]
    assert len(bodies) == 3
    call_item = first[-1].response.output[0].to_dict()
    answer_item = second[-1].response.output[0].to_dict()
    assert bodies[0]["input"] == [DEVELOPER, user("weather in Paris?")]
    assert bodies[1]["input"] == [DEVELOPER, user("weather in Paris?"), call_item, result]
    assert bodies[2]["input"] == [DEVELOPER, user("weather in Paris?"), call_item, result, answer_item, user("thanks")]
    for body in bodies:
        assert body["stream"] is True and body["model"] == "gpt-fake"
        assert body["tools"] == [TOOL]  # remembered from the warm-up
        assert not {"type", "generate", "previous_response_id"} & body.keys()
        ids = [item["id"] for item in body["input"] if "id" in item]
        assert len(ids) == len(set(ids))
    assert len(proxy.usage) == 3 and {r.endpoint for r in proxy.usage} == {"/v1/responses"}


@pytest.mark.parametrize("kind", list(CONFIGS))
async def test_chained_tool_turns_are_translated_for_other_upstreams(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, kind: str
) -> None:
    fake, base = upstream
    fake.tool_loop = True
    proxy = await start_proxy(CONFIGS[kind](base))
    async with sdk(proxy).responses.connect() as conn:
        await conn.response.create(model="gpt-fake", input="weather in Paris?", tools=[TOOL])  # type: ignore[list-item]
        first = await until_terminal(conn)
        assert first[-1].type == "response.completed"
        (call,) = first[-1].response.output
        assert call.type == "function_call" and call.name == "get_weather"
        result = {"type": "function_call_output", "call_id": call.call_id, "output": "clear sky"}
        await conn.response.create(previous_response_id=first[-1].response.id, input=[result])  # type: ignore[list-item]
        second = await until_terminal(conn)
        assert second[-1].type == "response.completed"
        assert "".join(e.delta for e in second if e.type == "response.output_text.delta") == "Hello from fake"
        await conn.response.create(previous_response_id=second[-1].response.id, input="thanks")
        third = await until_terminal(conn)
        assert third[-1].type == "response.completed"

    bodies = [seen.json for seen in fake.seen]
    assert len(bodies) == 3
    if kind == "claude":
        assert all(seen.path == "/v1/messages" for seen in fake.seen)
        roles = [[m["role"], [b["type"] for b in m["content"]]] for m in bodies[2]["messages"]]
        assert roles == [
            ["user", ["text"]],
            ["assistant", ["tool_use"]],
            ["user", ["tool_result"]],
            ["assistant", ["text"]],
            ["user", ["text"]],
        ]
        assert bodies[1]["messages"][1]["content"][0]["id"] == bodies[1]["messages"][2]["content"][0]["tool_use_id"]
        assert all(body["stream"] is True and body["tools"][0]["name"] == "get_weather" for body in bodies)
    elif kind == "openai-compatibility":
        assert all(seen.path == "/v1/chat/completions" for seen in fake.seen)
        roles = [m["role"] for m in bodies[2]["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant", "user"]
        call_id = bodies[2]["messages"][1]["tool_calls"][0]["id"]
        assert bodies[2]["messages"][2]["tool_call_id"] == call_id == call.call_id
        assert bodies[2]["messages"][3]["content"] == "Hello from fake"
    else:
        assert all(seen.path.endswith(":streamGenerateContent") for seen in fake.seen)
        parts = [[m["role"], [next(iter(p)) for p in m["parts"]]] for m in bodies[2]["contents"]]
        assert parts == [
            ["user", ["text"]],
            ["model", ["functionCall"]],
            ["user", ["functionResponse"]],
            ["model", ["text"]],
            ["user", ["text"]],
        ]
        assert bodies[1]["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"
    assert len(bodies[0].get("messages") or bodies[0].get("contents")) == 1


async def test_errors_are_in_band_and_the_socket_stays_open(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_config(base))
    async with sdk(proxy).responses.connect() as conn:
        await conn.response.create(model="gpt-fake", input="hi", previous_response_id="resp_unknown")
        (error,) = await until_terminal(conn)
        assert error.type == "error" and error.status == 409
        assert error.error["code"] == "previous_response_not_found"
        assert error.error["param"] == "previous_response_id"

        fake.fail(429, times=0)
        await conn.response.create(model="gpt-fake", input="hi")
        (error,) = await until_terminal(conn)
        assert error.type == "error" and error.status == 429
        assert error.error["message"] == "fake upstream error 429"  # the upstream's own error object

        fake.plan.clear()
        await proxy.health.clear()
        await conn.response.create(model="gpt-fake", input="hi")
        events = await until_terminal(conn)
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == "Hello from fake"
