"""Gemini's token counts, `toolUsePromptTokenCount` included, in usage records and in translated answers.

Google counts tool-use prompts (the results built-in tools such as Google Search feed back to the
model) apart from `promptTokenCount`, and its `totalTokenCount` is prompt + tool-use prompt +
candidates + thoughts. Those tokens are input the model read and that Google bills as input, so the
proxy's input count includes them: only then do input plus output add up to Google's own total, and
a client of another dialect, or a budget reading the usage records, sees what the request cost.
Before one parser served both paths, records left them out while translated answers counted them.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.test_proxy_matrix import MODEL, upstream_config

META = {
    "promptTokenCount": 100,  # cached content included
    "cachedContentTokenCount": 60,
    "toolUsePromptTokenCount": 40,
    "candidatesTokenCount": 30,
    "thoughtsTokenCount": 20,
    "totalTokenCount": 190,
}
INPUT, OUTPUT, CACHED, REASONING, TOTAL = 140, 50, 60, 20, 190  # input = prompt + tool-use prompt


def answer(text: str, meta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": meta, "modelVersion": MODEL, "responseId": "r1"}


# Streams report the counts so far in every chunk; the last one has them all.
STREAM = b"".join(
    b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
    for chunk in (
        answer("Hello", {"promptTokenCount": 100, "toolUsePromptTokenCount": 40, "totalTokenCount": 140}),
        answer(" there", META, "STOP"),
    )
)


async def gemini_proxy(upstream: tuple[FakeUpstream, str], start_proxy: Starter, *, stream: bool) -> Proxy:
    fake, base = upstream
    if stream:
        fake.stream_body = STREAM
    else:
        fake.fail(200, body=json.dumps(answer("Hello there", META, "STOP")).encode(), times=0)
    return await start_proxy(upstream_config(Dialect.GEMINI, base))


def assert_recorded(proxy: Proxy) -> None:
    (record,) = proxy.usage.recent()
    assert record.upstream_dialect == "gemini" and record.status == 200
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (INPUT, OUTPUT, TOTAL)
    assert (record.cached_tokens, record.reasoning_tokens) == (CACHED, REASONING)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_records_count_the_tool_use_prompt(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, stream: bool
) -> None:
    proxy = await gemini_proxy(upstream, start_proxy, stream=stream)
    options = types.HttpOptions(base_url=proxy.url, api_version="v1beta")
    client = genai.Client(api_key=CLIENT_KEY, http_options=options)
    if stream:
        chunks = [c async for c in await client.aio.models.generate_content_stream(model=MODEL, contents="hi")]
        meta = chunks[-1].usage_metadata
    else:
        meta = (await client.aio.models.generate_content(model=MODEL, contents="hi")).usage_metadata
    assert meta is not None and meta.tool_use_prompt_token_count == 40  # passthrough: Google's own counts
    assert_recorded(proxy)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_chat_clients_see_the_tool_use_prompt(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, stream: bool
) -> None:
    proxy = await gemini_proxy(upstream, start_proxy, stream=stream)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    if stream:
        chunks = await client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        usage = [c.usage async for c in chunks if c.usage][-1]
    else:
        completion = await client.chat.completions.create(model=MODEL, messages=messages)
        assert completion.usage is not None
        usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (INPUT, OUTPUT, TOTAL)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == CACHED
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == REASONING
    assert_recorded(proxy)


async def test_responses_clients_see_the_tool_use_prompt(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    proxy = await gemini_proxy(upstream, start_proxy, stream=False)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    usage = (await client.responses.create(model=MODEL, input="hi")).usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (INPUT, OUTPUT, TOTAL)
    assert usage.input_tokens_details.cached_tokens == CACHED
    assert usage.output_tokens_details.reasoning_tokens == REASONING
    assert_recorded(proxy)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_claude_clients_see_the_tool_use_prompt(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, stream: bool
) -> None:
    """Anthropic counts cache reads apart from `input_tokens`: the tool-use prompt is in the latter."""
    proxy = await gemini_proxy(upstream, start_proxy, stream=stream)
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    if stream:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=messages) as claude_stream:
            message = await claude_stream.get_final_message()
    else:
        message = await client.messages.create(model=MODEL, max_tokens=64, messages=messages)
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (INPUT - CACHED, CACHED, OUTPUT)
    assert_recorded(proxy)
