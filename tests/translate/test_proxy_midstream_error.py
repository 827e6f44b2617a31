"""An upstream stream that breaks off with an error after the first text reaches each client SDK as an
error in the client's own dialect, through the running proxy, for all 12 pairs.

The status line was already sent, so the error travels in-band: chat `data: {"error":…}` (no `[DONE]`),
Anthropic `event: error`, Responses `event: error`, Gemini an error envelope; each SDK raises (or, for
Responses, yields) its own error, and the text that came before is not lost.
"""

from __future__ import annotations

import itertools
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream, events_of, wire_body
from tests.translate.test_proxy_matrix import MODEL, upstream_config

PAIRS = list(itertools.permutations(Dialect, 2))
IDS = [f"{a.value}->{b.value}" for a, b in PAIRS]
RECORDED = {
    Dialect.CHAT: "openai_chat_stream.txt",
    Dialect.RESPONSES: "openai_responses_stream.txt",
    Dialect.CLAUDE: "anthropic_stream.txt",
    Dialect.GEMINI: "gemini_stream.txt",
}
ERROR_EVENT = {
    Dialect.CHAT: b'data: {"error": {"message": "Overloaded", "type": "server_error", "code": null}}\n\n',
    Dialect.RESPONSES: b'event: error\ndata: {"type": "error", "code": "server_error", "message": "Overloaded", '
    b'"param": null, "sequence_number": 6}\n\n',
    Dialect.CLAUDE: b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
    b'"message": "Overloaded"}}\n\n',
    Dialect.GEMINI: b'data: {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}\r\n\r\n',
}


def broken_stream(dialect: Dialect) -> bytes:
    """The recorded stream up to its first text ("Hello"), then the dialect's own error event."""
    events = events_of(wire_body(RECORDED[dialect]))
    first_text = next(i for i, ev in enumerate(events) if b"Hello" in ev)
    return b"".join(events[: first_text + 1]) + ERROR_EVENT[dialect]


async def read_until_error(client: Dialect, proxy: Proxy) -> tuple[str, str]:
    """(text received before the error, the error message as the SDK reports it)."""
    text = ""
    if client is Dialect.CHAT:
        oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        with pytest.raises(openai.APIError) as chat_error:
            stream = await oc.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for chunk in stream:
                text += "".join(c.delta.content or "" for c in chunk.choices)
        return text, chat_error.value.message
    if client is Dialect.RESPONSES:
        oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        events: list[Any] = []
        async for event in await oc.responses.create(model=MODEL, input="hi", stream=True):
            events.append(event)
        kinds = [e.type for e in events]
        assert "response.completed" not in kinds
        assert kinds[0] == "response.created"
        seqs = [e.sequence_number for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        errors = [e for e in events if e.type in ("error", "response.failed")]
        assert errors, kinds
        last = errors[-1]
        return text, last.message if last.type == "error" else last.response.error.message
    if client is Dialect.CLAUDE:
        ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as claude_error:
            async with ac.messages.stream(
                model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                async for event in stream:
                    if event.type == "text":
                        text += event.text
        return text, str(claude_error.value.message)
    gc = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    with pytest.raises(genai_errors.APIError) as gemini_error:
        async for chunk in await gc.aio.models.generate_content_stream(model=MODEL, contents="hi"):
            for cand in chunk.candidates or ():
                text += "".join(p.text or "" for p in (cand.content.parts if cand.content else None) or ())
    return text, str(gemini_error.value.message)


@pytest.mark.parametrize(("client", "upstream_dialect"), PAIRS, ids=IDS)
async def test_error_after_first_text_reaches_the_sdk_in_its_dialect(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, client: Dialect, upstream_dialect: Dialect
) -> None:
    fake, base = upstream
    fake.stream_body = broken_stream(upstream_dialect)
    proxy = await start_proxy(upstream_config(upstream_dialect, base))
    text, message = await read_until_error(client, proxy)
    assert text == "Hello"
    assert "Overloaded" in message
