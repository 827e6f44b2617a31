"""The official SDKs accept what the stream encoders write (and the non-stream encoders return).

A tiny aiohttp server replays the translated bytes; each SDK parses them with its own stream helper:
anthropic `messages.stream()`, openai `responses.stream()` and the chat stream helper, google-genai's
`generate_content_stream`. Upstreams are the recorded transcripts of the three other dialects.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.convert import StreamTranslator, translate_response
from tests.translate.transcripts import nonstream_body, stream_events

ServerFactory = Callable[..., Awaitable[TestServer]]
PAIRS = list(itertools.permutations(Dialect, 2))
IDS = [f"{a.value}->{b.value}" for a, b in PAIRS]


async def _serve(aiohttp_server: ServerFactory, body: bytes, content_type: str) -> str:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def _translated_stream(upstream: Dialect, client: Dialect, case: str) -> bytes:
    tr = StreamTranslator(upstream, client, model="client-model")
    return b"".join(tr.feed(ev) for ev in stream_events(upstream, case)) + tr.finish()


async def _answer(client: Dialect, base: str, *, stream: bool, case: str) -> tuple[str, list[tuple[str, Any]], str]:
    """(text, [(tool name, args)], stop reason) as the SDK sees them."""
    if client is Dialect.CHAT:
        import openai

        oc = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
        kwargs: dict[str, Any] = {"model": "client-model", "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            async with oc.chat.completions.stream(**kwargs) as s:
                async for _ in s:
                    pass
                completion = await s.get_final_completion()
        else:
            completion = await oc.chat.completions.create(**kwargs)
        msg = completion.choices[0].message
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or ()]
        return msg.content or "", calls, str(completion.choices[0].finish_reason)
    if client is Dialect.RESPONSES:
        import openai

        oc = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
        if stream:
            async with oc.responses.stream(model="client-model", input="hi") as rs:
                async for _ in rs:
                    pass
                resp = await rs.get_final_response()
        else:
            resp = await oc.responses.create(model="client-model", input="hi")
        calls = [(o.name, json.loads(o.arguments)) for o in resp.output if o.type == "function_call"]
        return resp.output_text, calls, str(resp.status)
    if client is Dialect.CLAUDE:
        import anthropic

        ac = anthropic.AsyncAnthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
        msgs: list[Any] = [{"role": "user", "content": "hi"}]
        if stream:
            async with ac.messages.stream(model="client-model", max_tokens=64, messages=msgs) as ms:
                async for _ in ms:
                    pass
                message = await ms.get_final_message()
        else:
            message = await ac.messages.create(model="client-model", max_tokens=64, messages=msgs)
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
        assert message.usage.input_tokens == 5 or case == "tool"
        return text, calls, str(message.stop_reason)
    from google import genai
    from google.genai import types

    gc = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=base, api_version="v1beta"))
    text, calls, finish = "", [], ""
    if stream:
        async for chunk in await gc.aio.models.generate_content_stream(model="client-model", contents="hi"):
            for cand in chunk.candidates or ():
                for part in (cand.content.parts if cand.content else None) or ():
                    if part.text:
                        text += part.text
                    if part.function_call:
                        calls.append((part.function_call.name, part.function_call.args))
                finish = str(cand.finish_reason or finish)
    else:
        r = await gc.aio.models.generate_content(model="client-model", contents="hi")
        text = r.text or ""
        calls = [(fc.name, fc.args) for fc in r.function_calls or ()]
        finish = str(r.candidates[0].finish_reason) if r.candidates else ""
    return text, calls, finish


def _expected(case: str) -> tuple[str, list[tuple[str, Any]]]:
    return ("Hello from fake", []) if case == "text" else ("", [("get_weather", {"city": "Paris"})])


@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=IDS)
@pytest.mark.parametrize("case", ["text", "tool"])
async def test_sdk_accepts_stream(aiohttp_server: ServerFactory, client: Dialect, upstream: Dialect, case: str) -> None:
    base = await _serve(aiohttp_server, _translated_stream(upstream, client, case), "text/event-stream")
    text, calls, stop = await _answer(client, base, stream=True, case=case)
    assert (text, calls) == _expected(case)
    if client is Dialect.CLAUDE:
        assert stop == ("end_turn" if case == "text" else "tool_use")
    elif client is Dialect.CHAT:
        assert stop == ("stop" if case == "text" else "tool_calls")


@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=IDS)
@pytest.mark.parametrize("case", ["text", "tool"])
async def test_sdk_accepts_response(
    aiohttp_server: ServerFactory, client: Dialect, upstream: Dialect, case: str
) -> None:
    body = translate_response(nonstream_body(upstream, case), upstream, client, model="client-model")
    base = await _serve(aiohttp_server, jsonio.dumps(body), "application/json")
    text, calls, _ = await _answer(client, base, stream=False, case=case)
    assert (text, calls) == _expected(case)


async def test_sdk_sees_midstream_error(aiohttp_server: ServerFactory) -> None:
    """An error after the first bytes is framed so each SDK raises (or yields) its own error."""
    import anthropic

    tr = StreamTranslator(Dialect.CHAT, Dialect.CLAUDE, model="m")
    events = stream_events(Dialect.CHAT, "text")
    data = tr.feed(events[0]) + tr.feed(events[1]) + tr.error(529, "overloaded")
    base = await _serve(aiohttp_server, data, "text/event-stream")
    ac = anthropic.AsyncAnthropic(base_url=base, api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError, match="overloaded"):
        async with ac.messages.stream(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as s:
            async for _ in s:
                pass
