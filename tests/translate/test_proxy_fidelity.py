"""What must survive every pair, through the running proxy: each client SDK sends one rich request and
the upstream's own codec reads back what arrived.

The rich request holds a system prompt (plus a `role: system` entry in the middle of the conversation
where the client dialect has one, as Claude Code sends), images as base64 and as URL, a turn with two
parallel tool calls and their two results, an assistant text turn (a last assistant turn with tool calls
but no Claude signature makes a Claude upstream turn thinking off: see test_requests), stop sequences,
a JSON-schema output request and reasoning settings. A second request carries the `model(budget)`
suffix instead.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.convert import CODECS
from cliproxy.translate.ir import ImagePart, Request, TextPart, ToolCallPart, ToolResultPart
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.test_proxy_matrix import MODEL, upstream_config

PAIRS = list(itertools.permutations(Dialect, 2))
IDS = [f"{a.value}->{b.value}" for a, b in PAIRS]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
URL = "https://example.com/cat.png"
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
CALLS = [("call_a1", {"city": "Paris"}, "sunny"), ("call_b2", {"city": "Rome"}, "rainy")]


async def send_chat(proxy: Proxy, model: str, rich: bool) -> None:
    oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    if not rich:
        await oc.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        return
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": URL}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(a)}}
                for cid, a, _ in CALLS
            ],
        },
        *({"role": "tool", "tool_call_id": cid, "content": out} for cid, _, out in CALLS),
        {"role": "system", "content": "mid rule"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "answer in JSON"},
    ]
    await oc.chat.completions.create(
        model=model,
        messages=messages,
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}],
        stop=["END"],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}},
        reasoning_effort="high",
        max_completion_tokens=4096,
    )


async def send_responses(proxy: Proxy, model: str, rich: bool) -> None:
    oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    if not rich:
        await oc.responses.create(model=model, input="hi")
        return
    items: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "what is in these?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                {"type": "input_image", "image_url": URL, "detail": "auto"},
            ],
        },
        *(
            {"type": "function_call", "call_id": cid, "name": "get_weather", "arguments": json.dumps(a)}
            for cid, a, _ in CALLS
        ),
        *({"type": "function_call_output", "call_id": cid, "output": out} for cid, _, out in CALLS),
        {"role": "developer", "content": "mid rule"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "answer in JSON"},
    ]
    await oc.responses.create(
        model=model,
        instructions="be brief",
        input=items,
        tools=[{"type": "function", "name": "get_weather", "parameters": PARAMS, "strict": False}],
        text={"format": {"type": "json_schema", "name": "answer", "schema": ANSWER}},
        reasoning={"effort": "high"},
        max_output_tokens=4096,
    )


async def send_claude(proxy: Proxy, model: str, rich: bool) -> None:
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    if not rich:
        await ac.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        return
    messages: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": URL}},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": cid, "name": "get_weather", "input": a} for cid, a, _ in CALLS],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": cid, "content": out} for cid, _, out in CALLS],
        },
        {"role": "system", "content": [{"type": "text", "text": "mid rule"}]},  # as Claude Code sends it
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "answer in JSON"},
    ]
    await ac.messages.create(
        model=model,
        max_tokens=4096,
        system="be brief",
        messages=messages,
        tools=[{"name": "get_weather", "input_schema": PARAMS}],
        stop_sequences=["END"],
        thinking={"type": "enabled", "budget_tokens": 24576},
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": ANSWER}}},
    )


async def send_gemini(proxy: Proxy, model: str, rich: bool) -> None:
    gc = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    if not rich:
        await gc.aio.models.generate_content(model=model, contents="hi")
        return
    contents = [
        types.Content(
            role="user",
            parts=[
                types.Part(text="what is in these?"),
                types.Part(inline_data=types.Blob(mime_type="image/png", data=base64.b64decode(PNG))),
                types.Part(file_data=types.FileData(mime_type="image/png", file_uri=URL)),
            ],
        ),
        types.Content(
            role="model",
            parts=[
                types.Part(function_call=types.FunctionCall(id=cid, name="get_weather", args=a)) for cid, a, _ in CALLS
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(id=cid, name="get_weather", response={"result": out})
                )
                for cid, _, out in CALLS
            ],
        ),
        types.Content(role="model", parts=[types.Part(text="ok")]),
        types.Content(role="user", parts=[types.Part(text="answer in JSON")]),
    ]
    config = types.GenerateContentConfig(
        system_instruction="be brief",
        tools=[
            types.Tool(
                function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=PARAMS)]
            )
        ],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        stop_sequences=["END"],
        response_mime_type="application/json",
        response_json_schema=ANSWER,
        thinking_config=types.ThinkingConfig(thinking_budget=24576),
        max_output_tokens=4096,
    )
    await gc.aio.models.generate_content(model=model, contents=contents, config=config)


SENDERS = {Dialect.CHAT: send_chat, Dialect.RESPONSES: send_responses, Dialect.CLAUDE: send_claude}
SENDERS[Dialect.GEMINI] = send_gemini


def all_text(req: Request) -> str:
    texts = [p.text for p in req.system]
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                texts.append(part.text)
    return "\n".join(texts)


@pytest.mark.parametrize(("client", "upstream_dialect"), PAIRS, ids=IDS)
async def test_rich_request_survives(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, client: Dialect, upstream_dialect: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(upstream_dialect, base))
    await SENDERS[client](proxy, MODEL, True)
    (seen,) = fake.seen
    req = CODECS[upstream_dialect].decode_request(seen.json)

    text = all_text(req)
    for expected in ("be brief", "what is in these?", "answer in JSON"):
        assert expected in text
    if client is not Dialect.GEMINI:  # Gemini has no system turn inside the conversation
        assert "mid rule" in text
        assert "be brief" in "".join(p.text for p in req.system)

    images = [p for m in req.messages for p in m.parts if isinstance(p, ImagePart)]
    assert [(i.data, i.media_type) for i in images if i.data] == [(PNG, "image/png")]
    assert [i.url for i in images if i.url] == [URL]

    assistant = [m for m in req.messages if any(isinstance(p, ToolCallPart) for p in m.parts)]
    assert len(assistant) == 1, "the two parallel calls stay in one assistant turn"
    calls = [p for p in assistant[0].parts if isinstance(p, ToolCallPart)]
    assert [(c.name, jsonio.loads(c.arguments)) for c in calls] == [("get_weather", a) for _, a, _ in CALLS]
    assert len({c.id for c in calls}) == 2
    if upstream_dialect is not Dialect.GEMINI:
        assert [c.id for c in calls] == [cid for cid, _, _ in CALLS]
    results = [p for m in req.messages for p in m.parts if isinstance(p, ToolResultPart)]
    assert [r.call_id for r in results] == [c.id for c in calls]
    result_text = [" ".join(t.text for t in r.content if isinstance(t, TextPart)) for r in results]
    assert all(out in got for (_, _, out), got in zip(CALLS, result_text, strict=True))
    assert [t.name for t in req.tools] == ["get_weather"]

    # Responses has no stop sequences: nothing to carry from or to it
    if Dialect.RESPONSES not in (client, upstream_dialect):
        assert req.stop == ["END"]
    assert req.response_format is not None and req.response_format.kind == "json_schema"
    assert req.response_format.schema is not None
    assert req.response_format.schema["properties"]["answer"]["type"].lower() == "string"
    assert req.reasoning is not None
    assert req.reasoning.effort == "high" or req.reasoning.budget == 24576


@pytest.mark.parametrize(("client", "upstream_dialect"), PAIRS, ids=IDS)
async def test_model_budget_suffix(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, client: Dialect, upstream_dialect: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(upstream_dialect, base))
    await SENDERS[client](proxy, f"{MODEL}(2048)", False)
    (seen,) = fake.seen
    if upstream_dialect is Dialect.GEMINI:
        assert seen.path.endswith(f"/models/{MODEL}:generateContent")
    else:
        assert seen.json["model"] == MODEL
    req = CODECS[upstream_dialect].decode_request(seen.json)
    assert req.reasoning is not None
    if upstream_dialect in (Dialect.CHAT, Dialect.RESPONSES):
        assert req.reasoning.effort == "low"  # OpenAI speaks levels: 2048 tokens is "low"
    else:
        assert req.reasoning.budget == 2048
