"""All 12 directed pairs × {stream, non-stream} × {plain text, tool-call round trip}, through the running proxy.

Each client dialect is driven by its official SDK (openai chat.completions and responses, anthropic
messages, google-genai generate_content), the proxy translates to an upstream of another dialect (fake
upstreams replaying the recorded wire formats), and the answer is checked as the SDK parsed it: text,
tool call name/arguments/id, stop reason and usage. The tool case is a real round trip: the second turn
sends the tool result back, and the request the upstream then receives must carry the call and its
result in the upstream's own dialect, paired by the call id the upstream issued.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream

MODEL = "up-model"
PAIRS = list(itertools.permutations(Dialect, 2))
IDS = [f"{a.value}->{b.value}" for a, b in PAIRS]
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
# The id each fake upstream gives its tool call (Gemini has none: the proxy synthesises one).
UPSTREAM_CALL_ID = {Dialect.CHAT: "call_fake1", Dialect.RESPONSES: "call_fake1", Dialect.CLAUDE: "toolu_fake1"}
STOP = {
    Dialect.CHAT: {"text": "stop", "tool": "tool_calls"},
    Dialect.RESPONSES: {"text": "completed", "tool": "completed"},
    Dialect.CLAUDE: {"text": "end_turn", "tool": "tool_use"},
    Dialect.GEMINI: {"text": "STOP", "tool": "STOP"},
}


def upstream_config(dialect: Dialect, base: str) -> str:
    """One credential of the upstream kind that speaks `dialect`, serving `MODEL`."""
    if dialect is Dialect.CHAT:
        return (
            f"openai-compatibility:\n  - name: fake\n    base-url: {base}/v1\n"
            f"    api-key-entries:\n      - api-key: sk-up\n    models:\n      - name: {MODEL}\n"
        )
    kind, key, url = {
        Dialect.RESPONSES: ("codex-api-key", "sk-codex-up", f"{base}/v1"),
        Dialect.CLAUDE: ("claude-api-key", "sk-ant-up", base),
        Dialect.GEMINI: ("gemini-api-key", "AIza-up", base),
    }[dialect]
    return f"{kind}:\n  - api-key: {key}\n    base-url: {url}\n    models: [{{name: {MODEL}}}]\n"


@dataclass
class Answer:
    """One model turn as the client SDK parsed it."""

    text: str = ""
    calls: list[tuple[str | None, str, Any]] = field(default_factory=list)  # (id, name, args)
    stop: str = ""
    usage: tuple[int, int] | None = None
    history: Any = None  # what the client appends to its history to continue the conversation


# ---- chat: openai chat.completions ----------------------------------------------------------------


async def chat_turn(proxy: Proxy, messages: list[Any], *, tools: bool, stream: bool) -> Answer:
    oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    kwargs: dict[str, Any] = {"model": MODEL, "messages": messages, "max_tokens": 64}
    if tools:
        kwargs["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}]
    answer = Answer()
    tool_calls: dict[int, dict[str, Any]] = {}
    if stream:
        chunks = await oc.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        async for chunk in chunks:
            if chunk.usage:
                answer.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            for choice in chunk.choices:
                answer.text += choice.delta.content or ""
                answer.stop = choice.finish_reason or answer.stop
                for tc in choice.delta.tool_calls or ():  # arguments arrive in pieces, keyed by index
                    entry = tool_calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                    entry["id"] = tc.id or entry["id"]
                    if tc.function:
                        entry["name"] += tc.function.name or ""
                        entry["arguments"] += tc.function.arguments or ""
    else:
        completion = await oc.chat.completions.create(**kwargs)
        msg = completion.choices[0].message
        answer.text, answer.stop = msg.content or "", completion.choices[0].finish_reason
        if completion.usage:
            answer.usage = (completion.usage.prompt_tokens, completion.usage.completion_tokens)
        for index, c in enumerate(msg.tool_calls or ()):
            assert c.type == "function"
            tool_calls[index] = {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
    answer.calls = [(c["id"], c["name"], json.loads(c["arguments"])) for c in tool_calls.values()]
    answer.history = {"role": "assistant", "content": answer.text or None}
    if tool_calls:
        answer.history["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in tool_calls.values()
        ]
    return answer


async def chat_case(proxy: Proxy, *, tool: bool, stream: bool) -> tuple[Answer, Answer | None]:
    if not tool:
        messages: list[Any] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        return await chat_turn(proxy, messages, tools=False, stream=stream), None
    messages = [{"role": "user", "content": "weather in Paris?"}]
    first = await chat_turn(proxy, messages, tools=True, stream=stream)
    results = [{"role": "tool", "tool_call_id": cid, "content": "sunny"} for cid, _, _ in first.calls]
    second = await chat_turn(proxy, [*messages, first.history, *results], tools=True, stream=stream)
    return first, second


# ---- responses: openai responses.create / responses.stream -----------------------------------------


async def responses_turn(proxy: Proxy, items: Any, *, tools: bool, stream: bool, system: bool = False) -> Answer:
    oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    kwargs: dict[str, Any] = {"model": MODEL, "input": items, "max_output_tokens": 64}
    if system:
        kwargs["instructions"] = "be brief"
    if tools:
        kwargs["tools"] = [{"type": "function", "name": "get_weather", "parameters": PARAMS, "strict": False}]
    if stream:
        async with oc.responses.stream(**kwargs) as s:
            async for _ in s:
                pass
            resp: Any = await s.get_final_response()
    else:
        resp = await oc.responses.create(**kwargs)
    fcs = [o for o in resp.output if o.type == "function_call"]
    calls = [(o.call_id, o.name, json.loads(o.arguments)) for o in fcs]
    history = [
        {"type": "function_call", "call_id": o.call_id, "name": o.name, "arguments": o.arguments} for o in fcs
    ] or [{"role": "assistant", "content": resp.output_text}]
    usage = (resp.usage.input_tokens, resp.usage.output_tokens) if resp.usage else None
    return Answer(resp.output_text, calls, str(resp.status), usage, history)


async def responses_case(proxy: Proxy, *, tool: bool, stream: bool) -> tuple[Answer, Answer | None]:
    if not tool:
        return await responses_turn(proxy, "hi", tools=False, stream=stream, system=True), None
    items: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = await responses_turn(proxy, items, tools=True, stream=stream)
    results = [{"type": "function_call_output", "call_id": cid, "output": "sunny"} for cid, _, _ in first.calls]
    second = await responses_turn(proxy, [*items, *first.history, *results], tools=True, stream=stream)
    return first, second


# ---- claude: anthropic messages.create / messages.stream -------------------------------------------


async def claude_turn(proxy: Proxy, messages: list[Any], *, tools: bool, stream: bool, system: bool = False) -> Answer:
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": messages}
    if system:
        kwargs["system"] = "be brief"
    if tools:
        kwargs["tools"] = [{"name": "get_weather", "input_schema": PARAMS}]
    if stream:
        async with ac.messages.stream(**kwargs) as s:
            async for _ in s:
                pass
            message: Any = await s.get_final_message()
    else:
        message = await ac.messages.create(**kwargs)
    text = "".join(b.text for b in message.content if b.type == "text")
    calls = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    history = {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}
    usage = (message.usage.input_tokens, message.usage.output_tokens)
    return Answer(text, calls, str(message.stop_reason), usage, history)


async def claude_case(proxy: Proxy, *, tool: bool, stream: bool) -> tuple[Answer, Answer | None]:
    if not tool:
        hi = [{"role": "user", "content": "hi"}]
        return await claude_turn(proxy, hi, tools=False, stream=stream, system=True), None
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = await claude_turn(proxy, messages, tools=True, stream=stream)
    results = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": cid, "content": "sunny"} for cid, _, _ in first.calls],
    }
    second = await claude_turn(proxy, [*messages, first.history, results], tools=True, stream=stream)
    return first, second


# ---- gemini: google-genai generate_content / generate_content_stream -------------------------------


async def gemini_turn(proxy: Proxy, contents: list[Any], *, tools: bool, stream: bool, system: bool = False) -> Answer:
    gc = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    config = types.GenerateContentConfig(
        max_output_tokens=64,
        system_instruction="be brief" if system else None,
        tools=[
            types.Tool(
                function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=PARAMS)]
            )
        ]
        if tools
        else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    chunks: list[Any] = []
    if stream:
        async for chunk in await gc.aio.models.generate_content_stream(model=MODEL, contents=contents, config=config):
            chunks.append(chunk)
    else:
        chunks.append(await gc.aio.models.generate_content(model=MODEL, contents=contents, config=config))
    answer = Answer()
    parts: list[Any] = []
    for chunk in chunks:
        for cand in chunk.candidates or ():
            for part in (cand.content.parts if cand.content else None) or ():
                parts.append(part)
                if part.text and not part.thought:
                    answer.text += part.text
                if part.function_call:
                    fc = part.function_call
                    answer.calls.append((fc.id, fc.name, fc.args))
            answer.stop = str(cand.finish_reason.value) if cand.finish_reason else answer.stop
        meta = chunk.usage_metadata
        if meta and meta.prompt_token_count is not None:
            answer.usage = (meta.prompt_token_count, meta.candidates_token_count or 0)
    answer.history = types.Content(role="model", parts=[p for p in parts if p.function_call] or parts)
    return answer


async def gemini_case(proxy: Proxy, *, tool: bool, stream: bool) -> tuple[Answer, Answer | None]:
    if not tool:
        return await gemini_turn(proxy, ["hi"], tools=False, stream=stream, system=True), None
    ask = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])
    first = await gemini_turn(proxy, [ask], tools=True, stream=stream)
    results = types.Content(
        role="user",
        parts=[
            types.Part(function_response=types.FunctionResponse(id=cid, name=name, response={"result": "sunny"}))
            for cid, name, _ in first.calls
        ],
    )
    second = await gemini_turn(proxy, [ask, first.history, results], tools=True, stream=stream)
    return first, second


CASES = {
    Dialect.CHAT: chat_case,
    Dialect.RESPONSES: responses_case,
    Dialect.CLAUDE: claude_case,
    Dialect.GEMINI: gemini_case,
}


def expected_usage(upstream: Dialect, client: Dialect, *, stream: bool, case: str) -> tuple[int, int]:
    """(input, output) tokens as the client's dialect counts what the fake upstream reported (5 in, 3 out).

    The non-stream fakes also report cache and reasoning tokens, and the dialects count those differently:
    OpenAI and Gemini input includes cached tokens, Anthropic `input_tokens` excludes cache reads and
    writes; Gemini `candidatesTokenCount` excludes the thoughts that OpenAI output includes.
    """
    if stream:
        return 5, 3
    if upstream is Dialect.CHAT:  # prompt 5 of which 2 cached; completion 3 of which 1 reasoning
        return {Dialect.CLAUDE: (3, 3), Dialect.GEMINI: (5, 2)}.get(client, (5, 3))
    if upstream is Dialect.CLAUDE and case == "text":  # input 5 + 2 cache reads + 1 cache write
        return (5, 3) if client is Dialect.CLAUDE else (8, 3)
    return 5, 3


# ---- what the upstream received, in its own dialect ------------------------------------------------


def system_text(dialect: Dialect, body: dict[str, Any]) -> str:
    if dialect is Dialect.CHAT:
        return "".join(m["content"] for m in body["messages"] if m["role"] in ("system", "developer"))
    if dialect is Dialect.RESPONSES:
        instructions = body.get("instructions") or ""
        items = [i for i in body["input"] if i.get("role") in ("system", "developer")]
        texts = [c if isinstance(c, str) else c.get("text", "") for i in items for c in _listed(i["content"])]
        return instructions + "".join(texts)
    if dialect is Dialect.CLAUDE:
        system = body.get("system") or ""
        return system if isinstance(system, str) else "".join(b["text"] for b in system)
    return "".join(p["text"] for p in body["systemInstruction"]["parts"])


def _listed(content: Any) -> list[Any]:
    return content if isinstance(content, list) else [content]


def tool_round_trip(dialect: Dialect, body: dict[str, Any]) -> tuple[list[str | None], list[str | None], str]:
    """(ids of the tool calls, ids their results answer, the results' text) in an upstream request."""
    if dialect is Dialect.CHAT:
        calls = [c["id"] for m in body["messages"] for c in m.get("tool_calls") or ()]
        results = [m for m in body["messages"] if m["role"] == "tool"]
        return calls, [m["tool_call_id"] for m in results], json.dumps([m["content"] for m in results])
    if dialect is Dialect.RESPONSES:
        items = body["input"]
        outputs = [i for i in items if i.get("type") == "function_call_output"]
        calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
        return calls, [i["call_id"] for i in outputs], json.dumps([i["output"] for i in outputs])
    if dialect is Dialect.CLAUDE:
        blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
        results = [b for b in blocks if b["type"] == "tool_result"]
        calls = [b["id"] for b in blocks if b["type"] == "tool_use"]
        return calls, [b["tool_use_id"] for b in results], json.dumps([b["content"] for b in results])
    parts = [p for c in body["contents"] for p in c["parts"]]
    fcs = [p["functionCall"] for p in parts if "functionCall" in p]
    frs = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert [f["name"] for f in fcs] == [f["name"] for f in frs] == ["get_weather"]
    return [f.get("id") for f in fcs], [f.get("id") for f in frs], json.dumps([f["response"] for f in frs])


@pytest.mark.parametrize(("client", "upstream_dialect"), PAIRS, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", ["text", "tool"])
async def test_sdk_through_proxy(
    upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    client: Dialect,
    upstream_dialect: Dialect,
    stream: bool,
    case: str,
) -> None:
    fake, base = upstream
    fake.tool_loop = True  # a tool call first, text once the conversation ends with a tool result
    proxy = await start_proxy(upstream_config(upstream_dialect, base))
    first, second = await CASES[client](proxy, tool=case == "tool", stream=stream)

    # the upstream was asked in its own dialect, streaming exactly when the client streamed
    assert fake.seen, "the upstream was never called"
    for seen in fake.seen:
        body = seen.json
        if upstream_dialect is Dialect.GEMINI:
            method = "streamGenerateContent" if stream else "generateContent"
            assert seen.path.endswith(f"/models/{MODEL}:{method}")
        else:
            assert body["model"] == MODEL
            assert bool(body.get("stream")) is stream or upstream_dialect is Dialect.RESPONSES
    # the recorded chat tool stream was made without stream_options.include_usage: it carries no usage
    upstream_usage = not (upstream_dialect is Dialect.CHAT and case == "tool" and stream)

    if case == "text":
        assert second is None
        assert first.text == "Hello from fake"
        assert first.calls == []
        assert first.stop == STOP[client]["text"]
        assert first.usage == expected_usage(upstream_dialect, client, stream=stream, case="text")
        assert system_text(upstream_dialect, fake.seen[0].json) == "be brief"
        return

    assert second is not None
    assert len(fake.seen) == 2
    (call,) = first.calls
    call_id, name, args = call
    assert (name, args) == ("get_weather", {"city": "Paris"})
    assert call_id, "every dialect but Gemini needs a call id; the proxy synthesises one for Gemini"
    if upstream_dialect in UPSTREAM_CALL_ID:
        assert call_id == UPSTREAM_CALL_ID[upstream_dialect]
    assert first.stop == STOP[client]["tool"]
    if upstream_usage:
        assert first.usage == expected_usage(upstream_dialect, client, stream=stream, case="tool")

    call_ids, result_ids, results = tool_round_trip(upstream_dialect, fake.seen[1].json)
    assert "sunny" in results
    assert len(call_ids) == len(result_ids) == 1
    assert result_ids == call_ids
    if upstream_dialect in UPSTREAM_CALL_ID:
        assert call_ids == [UPSTREAM_CALL_ID[upstream_dialect]]  # the id the upstream issued came back to it
    assert second.text == "Hello from fake"
    assert second.calls == []
    assert second.stop == STOP[client]["text"]
    assert second.usage == expected_usage(upstream_dialect, client, stream=stream, case="text")
