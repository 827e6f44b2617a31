"""Answers and streams as the client's SDK expects them, through the proxy: late tool-call ids and
names, parallel calls in order and never interleaved, truncated answers, error types, signature-only
Gemini parts.

The upstream streams here are written by hand in each provider's wire format, in the shapes real
providers send: an OpenAI-compatible server that names a call only in its second delta, parallel
calls whose argument deltas interleave, a Responses server that fills in the call only in
`output_item.done`.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from cliproxy.translate import Dialect
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.clients import anthropic_client, chat_tool, gemini_client, openai_client, received
from tests.translate.test_proxy_matrix import MODEL, upstream_config

Upstream = tuple[FakeUpstream, str]


def chat_chunks(*deltas: dict[str, Any], finish: str = "tool_calls") -> bytes:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def tool_delta(index: int, *, cid: str | None = None, name: str | None = None, args: str | None = None) -> Any:
    call: dict[str, Any] = {"index": index}
    if cid is not None:
        call["id"], call["type"] = cid, "function"
    fn = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    if fn:
        call["function"] = fn
    return {"tool_calls": [call]}


def responses_events(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events)


# The id and name arrive in the second delta, after an empty first one.
LATE_NAME = chat_chunks(
    {"role": "assistant", "content": None, **tool_delta(0, args="")},
    tool_delta(0, cid="call_late", name="get_weather"),
    tool_delta(0, args='{"city":'),
    tool_delta(0, args='"Paris"}'),
)
# Two parallel calls announced together, their argument deltas interleaved.
INTERLEAVED = chat_chunks(
    {"role": "assistant", "content": None, **tool_delta(0, cid="call_a", name="get_weather", args="")},
    tool_delta(1, cid="call_b", name="get_time", args=""),
    tool_delta(0, args='{"city":'),
    tool_delta(1, args='{"city":'),
    tool_delta(0, args='"Paris"}'),
    tool_delta(1, args='"Rome"}'),
)
_DONE_CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_done",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
    "status": "completed",
}
# The call is announced without call id and name; only `output_item.done` has them.
RESPONSES_LATE = responses_events(
    {"type": "response.created", "response": {"id": "resp_1", "model": "m", "output": []}},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "function_call", "id": "fc_1", "call_id": "", "name": "", "arguments": ""},
    },
    {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"city":'},
    {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '"Paris"}'},
    {"type": "response.output_item.done", "output_index": 0, "item": _DONE_CALL},
    {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": [_DONE_CALL]}},
)


def assert_blocks_in_sequence(events: list[Any]) -> None:
    """Every Anthropic content block: start, its deltas, stop, before the next block starts."""
    open_index: int | None = None
    for ev in events:
        if ev.type == "content_block_start":
            assert open_index is None, f"block {ev.index} started while {open_index} was open"
            open_index = ev.index
        elif ev.type == "content_block_delta":
            assert ev.index == open_index, f"a delta for block {ev.index} while {open_index} was open"
        elif ev.type == "content_block_stop":
            assert ev.index == open_index
            open_index = None


async def claude_calls(proxy: Proxy) -> list[tuple[str, str, Any]]:
    events: list[Any] = []
    messages: list[Any] = [{"role": "user", "content": "weather?"}]
    tools: list[Any] = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    async with anthropic_client(proxy).messages.stream(model=MODEL, max_tokens=64, messages=messages, tools=tools) as s:
        async for ev in s:
            events.append(ev)
        message = await s.get_final_message()
    assert_blocks_in_sequence(events)
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


async def responses_calls(proxy: Proxy) -> list[tuple[str, str, Any]]:
    events = [e async for e in await openai_client(proxy).responses.create(model=MODEL, input="weather?", stream=True)]
    open_items: set[int] = set()
    for e in events:  # every delta belongs to an item that was added and is not done yet
        if e.type == "response.output_item.added":
            assert not open_items, "one item at a time"
            open_items.add(e.output_index)
        elif e.type == "response.function_call_arguments.delta":
            assert e.output_index in open_items
        elif e.type == "response.output_item.done":
            open_items.discard(e.output_index)
    final = next(e.response for e in events if e.type == "response.completed")
    return [(o.call_id, o.name, json.loads(o.arguments)) for o in final.output if o.type == "function_call"]


async def chat_calls(proxy: Proxy) -> list[tuple[str, str, Any]]:
    stream = await openai_client(proxy).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[chat_tool()], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or ():
                entry = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                entry["id"] = tc.id or entry["id"]
                if tc.function:
                    entry["name"] += tc.function.name or ""
                    entry["args"] += tc.function.arguments or ""
    return [(c["id"], c["name"], json.loads(c["args"])) for _, c in sorted(calls.items())]


async def gemini_calls(proxy: Proxy) -> list[tuple[str, str, Any]]:
    calls = []
    async for chunk in await gemini_client(proxy).aio.models.generate_content_stream(model=MODEL, contents="weather?"):
        for cand in chunk.candidates or ():
            for part in (cand.content.parts if cand.content else None) or ():
                if part.function_call:
                    calls.append((part.function_call.id or "", part.function_call.name or "", part.function_call.args))
    return calls


READERS = {Dialect.CLAUDE: claude_calls, Dialect.RESPONSES: responses_calls, Dialect.GEMINI: gemini_calls}
READERS[Dialect.CHAT] = chat_calls


# ---- 10. streamed tool calls -----------------------------------------------------------------------


@pytest.mark.parametrize("client", [Dialect.CLAUDE, Dialect.RESPONSES, Dialect.GEMINI])
async def test_a_call_named_after_its_first_delta_keeps_its_id_and_name(
    upstream: Upstream, start_proxy: Starter, client: Dialect
) -> None:
    fake, base = upstream
    fake.stream_body = LATE_NAME
    proxy = await start_proxy(upstream_config(Dialect.CHAT, base))
    assert await READERS[client](proxy) == [("call_late", "get_weather", {"city": "Paris"})]


@pytest.mark.parametrize("client", [Dialect.CLAUDE, Dialect.RESPONSES, Dialect.GEMINI])
async def test_interleaved_parallel_calls_come_out_whole_in_index_order(
    upstream: Upstream, start_proxy: Starter, client: Dialect
) -> None:
    fake, base = upstream
    fake.stream_body = INTERLEAVED
    proxy = await start_proxy(upstream_config(Dialect.CHAT, base))
    assert await READERS[client](proxy) == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"city": "Rome"}),
    ]


@pytest.mark.parametrize("client", [Dialect.CHAT, Dialect.CLAUDE, Dialect.GEMINI])
async def test_a_responses_call_completed_only_when_done_keeps_its_id_and_name(
    upstream: Upstream, start_proxy: Starter, client: Dialect
) -> None:
    fake, base = upstream
    fake.stream_body = RESPONSES_LATE
    proxy = await start_proxy(upstream_config(Dialect.RESPONSES, base))
    assert await READERS[client](proxy) == [("call_done", "get_weather", {"city": "Paris"})]


# ---- 11. truncated answers -------------------------------------------------------------------------

TRUNCATED_STREAM = {
    Dialect.CLAUDE: b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n"
        for e in [
            {
                "type": "message_start",
                "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []},
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello wor"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 3}},
            {"type": "message_stop"},
        ]
    ),
    Dialect.CHAT: chat_chunks({"role": "assistant", "content": "Hello wor"}, finish="length"),
    Dialect.GEMINI: b"data: "
    + json.dumps(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello wor"}]}, "finishReason": "MAX_TOKENS"}]}
    ).encode()
    + b"\r\n\r\n",
}
TRUNCATED_ANSWER = {
    Dialect.CLAUDE: {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "Hello wor"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 3, "output_tokens": 3},
    },
    Dialect.CHAT: {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello wor"}, "finish_reason": "length"}],
    },
    Dialect.GEMINI: {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello wor"}]}, "finishReason": "MAX_TOKENS"}]
    },
}


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("target", [Dialect.CLAUDE, Dialect.CHAT, Dialect.GEMINI])
async def test_a_truncated_answer_marks_its_output_items_incomplete(
    upstream: Upstream, start_proxy: Starter, target: Dialect, stream: bool
) -> None:
    fake, base = upstream
    fake.stream_body, fake.answer = TRUNCATED_STREAM[target], TRUNCATED_ANSWER[target]
    proxy = await start_proxy(upstream_config(target, base))
    oc = openai_client(proxy)
    if stream:
        events = [e async for e in await oc.responses.create(model=MODEL, input="hi", stream=True)]
        done = [e.item for e in events if e.type == "response.output_item.done"]
        assert [(i.type, i.status) for i in done] == [("message", "incomplete")]
        (last,) = [e for e in events if e.type == "response.incomplete"]
        response = last.response
    else:
        response = await oc.responses.create(model=MODEL, input="hi")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert [(o.type, o.status) for o in response.output] == [("message", "incomplete")]
    assert response.output_text == "Hello wor"


# ---- 12. error types and signature-only parts ------------------------------------------------------

HELLO_CHAT = chat_chunks({"role": "assistant", "content": "Hello"}, finish="stop").split(b"data: {", 2)
CHAT_INVALID = (
    b"data: {" + HELLO_CHAT[1] + b'data: {"error": {"message": "bad input", "type": "invalid_request_error", '
    b'"param": null, "code": null}}\n\n'
)
_STARTED = [
    {"type": "response.created", "response": {"id": "resp_1", "model": "m", "output": []}},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
    },
    {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hello"},
]
RESPONSES_INVALID = {
    "error": responses_events(
        *_STARTED, {"type": "error", "code": "invalid_prompt", "message": "bad input", "param": None}
    ),
    "failed": responses_events(
        *_STARTED,
        {
            "type": "response.failed",
            "response": {
                "id": "resp_1",
                "status": "failed",
                "error": {"code": "invalid_prompt", "message": "bad input"},
            },
        },
    ),
}


async def client_error_kind(client: Dialect, proxy: Proxy) -> str:
    """The error type (or Gemini status) the client's SDK reports for a stream that fails after its first text."""
    if client is Dialect.CLAUDE:
        with pytest.raises(anthropic.APIStatusError) as claude_error:
            async with anthropic_client(proxy).messages.stream(
                model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as s:
                async for _ in s:
                    pass
        body: Any = claude_error.value.body
        return str(body["error"]["type"])
    if client is Dialect.GEMINI:
        with pytest.raises(genai_errors.APIError) as gemini_error:
            async for _ in await gemini_client(proxy).aio.models.generate_content_stream(model=MODEL, contents="hi"):
                pass
        return str(gemini_error.value.status)
    if client is Dialect.CHAT:
        with pytest.raises(openai.APIError) as chat_error:
            stream = await openai_client(proxy).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for _ in stream:
                pass
        return str(chat_error.value.type)
    events = [e async for e in await openai_client(proxy).responses.create(model=MODEL, input="hi", stream=True)]
    (error,) = [e for e in events if e.type == "error"]
    return str(error.code)


INVALID_KIND = {
    Dialect.CLAUDE: "invalid_request_error",
    Dialect.GEMINI: "INVALID_ARGUMENT",
    Dialect.CHAT: "invalid_request_error",
    Dialect.RESPONSES: "invalid_request_error",
}
BROKEN = [
    (Dialect.CHAT, "chat", Dialect.CLAUDE),
    (Dialect.CHAT, "chat", Dialect.GEMINI),
    (Dialect.CHAT, "chat", Dialect.RESPONSES),
    (Dialect.RESPONSES, "error", Dialect.CLAUDE),
    (Dialect.RESPONSES, "error", Dialect.GEMINI),
    (Dialect.RESPONSES, "failed", Dialect.CLAUDE),
    (Dialect.RESPONSES, "failed", Dialect.CHAT),
]


@pytest.mark.parametrize(("target", "how", "client"), BROKEN, ids=[f"{t.value}-{h}->{c.value}" for t, h, c in BROKEN])
async def test_an_invalid_request_error_mid_stream_stays_one(
    upstream: Upstream, start_proxy: Starter, target: Dialect, how: str, client: Dialect
) -> None:
    fake, base = upstream
    fake.stream_body = CHAT_INVALID if target is Dialect.CHAT else RESPONSES_INVALID[how]
    proxy = await start_proxy(upstream_config(target, base))
    assert await client_error_kind(client, proxy) == INVALID_KIND[client]


async def test_an_invalid_request_answer_stays_one(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    fake.fail(400, dialect="gemini")
    proxy = await start_proxy(upstream_config(Dialect.GEMINI, base))
    with pytest.raises(anthropic.BadRequestError) as refused:
        await anthropic_client(proxy).messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    body: Any = refused.value.body
    assert body["error"]["type"] == "invalid_request_error"


SIGNED = {"role": "model", "parts": [{"text": "Hello"}, {"text": "", "thoughtSignature": "c2lnbmF0dXJl"}]}


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_a_signature_only_gemini_part_is_no_empty_text_block(
    upstream: Upstream, start_proxy: Starter, stream: bool
) -> None:
    fake, base = upstream
    fake.answer = {"candidates": [{"content": SIGNED, "finishReason": "STOP"}]}
    fake.stream_body = b"data: " + json.dumps(fake.answer).encode() + b"\r\n\r\n"
    proxy = await start_proxy(upstream_config(Dialect.GEMINI, base))
    ac = anthropic_client(proxy)
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    if stream:
        async with ac.messages.stream(model=MODEL, max_tokens=64, messages=messages) as s:
            message = await s.get_final_message()
    else:
        message = await ac.messages.create(model=MODEL, max_tokens=64, messages=messages)
    assert [(b.type, b.text) for b in message.content if b.type == "text"] == [("text", "Hello")]
    response = await openai_client(proxy).responses.create(model=MODEL, input="hi")
    texts = [c.text for o in response.output if o.type == "message" for c in o.content if c.type == "output_text"]
    assert texts == ["Hello"]
    received(fake)


EARLY = {
    Dialect.RESPONSES: responses_events(
        {"type": "error", "code": "invalid_prompt", "message": "bad input", "param": None, "sequence_number": 0}
    ),
    Dialect.CHAT: b'data: {"error": {"message": "bad input", "type": "invalid_request_error", "code": null}}\n\n',
}


@pytest.mark.parametrize("target", [Dialect.RESPONSES, Dialect.CHAT])
async def test_an_invalid_request_error_before_any_content_stays_one(
    upstream: Upstream, start_proxy: Starter, target: Dialect
) -> None:
    fake, base = upstream
    fake.stream_body = EARLY[target]
    proxy = await start_proxy(upstream_config(target, base))
    with pytest.raises(anthropic.BadRequestError) as refused:
        async with anthropic_client(proxy).messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            async for _ in s:
                pass
    body: Any = refused.value.body
    assert body["error"]["type"] == "invalid_request_error"
    assert "bad input" in body["error"]["message"]
