"""litellm as an oracle: for the pairs it supports, our translation carries the same meaning.

litellm pivots through the chat format, so it covers chat⇄claude, chat⇄gemini and responses→chat.
Both outputs are compared semantically (text, tool calls, tool results, stop reason, usage), never
byte for byte: litellm's wire details differ (snake_case Gemini keys, spaces in JSON arguments),
and our decoders must accept those shapes too. litellm is imported lazily, offline, once per module.
"""

from __future__ import annotations

import copy
import json
import os
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest

from cliproxy.translate import Dialect
from cliproxy.translate.convert import CODECS, StreamTranslator, translate_request, translate_response
from tests.translate import samples
from tests.translate.transcripts import nonstream_body, parse_sse, stream_events

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic notes about litellm's own types


@pytest.fixture(scope="module")
def ll() -> SimpleNamespace:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "1")
    import httpx
    import litellm
    from litellm.llms.anthropic.chat.handler import ModelResponseIterator as ClaudeChunks
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig
    from litellm.llms.anthropic.pass_through.adapters.transformation import LiteLLMAnthropicMessagesAdapter
    from litellm.llms.vertex_ai.gemini import transformation as gemini_request
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator as GeminiChunks
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig
    from litellm.responses.litellm_completion_transformation.transformation import (
        LiteLLMCompletionResponsesConfig,
    )

    return SimpleNamespace(
        httpx=httpx,
        litellm=litellm,
        anthropic=AnthropicConfig(),
        claude_chunks=ClaudeChunks,
        adapter=LiteLLMAnthropicMessagesAdapter(),
        gemini_request=gemini_request,
        gemini=VertexGeminiConfig(),
        gemini_chunks=GeminiChunks,
        responses=LiteLLMCompletionResponsesConfig,
    )


def _chat_semantics(body: dict[str, Any]) -> tuple[str, list[tuple[str, Any]], str, tuple[int, int]]:
    """(text, [(tool, args)], finish_reason, (prompt, completion tokens)) of a chat completion."""
    choice = body["choices"][0]
    msg = choice["message"]
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in msg.get("tool_calls") or ()]
    usage = body.get("usage") or {}
    return (
        msg.get("content") or "",
        calls,
        choice["finish_reason"],
        (usage["prompt_tokens"], usage["completion_tokens"]),
    )


def _stream_semantics(chunks: list[dict[str, Any]]) -> tuple[str, list[tuple[str, Any]], str, tuple[int, int]]:
    text, finish, usage = "", "", (0, 0)
    calls: dict[int, list[str]] = {}
    for ch in chunks:
        for choice in ch.get("choices") or ():
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or ():
                entry = calls.setdefault(tc.get("index", 0), ["", ""])
                fn = tc.get("function") or {}
                entry[0] = fn.get("name") or entry[0]
                entry[1] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
        if ch.get("usage"):
            usage = (ch["usage"]["prompt_tokens"], ch["usage"]["completion_tokens"])
    return text, [(n, json.loads(a)) for n, a in calls.values()], finish, usage


def _httpx_response(ll: SimpleNamespace, body: dict[str, Any]) -> Any:
    return ll.httpx.Response(200, json=body, request=ll.httpx.Request("POST", "http://upstream.invalid"))


@pytest.mark.parametrize("case", ["text", "tool"])
def test_claude_response_to_chat(ll: SimpleNamespace, case: str) -> None:
    upstream = nonstream_body(Dialect.CLAUDE, case)
    theirs = ll.anthropic.transform_response(
        model="claude-fake-1",
        raw_response=_httpx_response(ll, upstream),
        model_response=ll.litellm.ModelResponse(),
        logging_obj=MagicMock(),
        request_data={},
        messages=[],
        optional_params={},
        litellm_params={},
        encoding=None,
    )
    ours = translate_response(upstream, Dialect.CLAUDE, Dialect.CHAT, model="m")
    assert _chat_semantics(ours) == _chat_semantics(theirs.model_dump())


@pytest.mark.parametrize("case", ["text", "tool"])
def test_gemini_response_to_chat(ll: SimpleNamespace, case: str) -> None:
    upstream = nonstream_body(Dialect.GEMINI, case)
    theirs = ll.gemini.transform_response(
        model="gemini-fake",
        raw_response=_httpx_response(ll, upstream),
        model_response=ll.litellm.ModelResponse(),
        logging_obj=MagicMock(),
        request_data={},
        messages=[],
        optional_params={},
        litellm_params={},
        encoding=None,
    )
    ours = translate_response(upstream, Dialect.GEMINI, Dialect.CHAT, model="m")
    assert _chat_semantics(ours) == _chat_semantics(theirs.model_dump())


@pytest.mark.parametrize("case", ["text", "tool"])
def test_chat_response_to_claude(ll: SimpleNamespace, case: str) -> None:
    upstream = nonstream_body(Dialect.CHAT, case)
    theirs = ll.adapter.translate_openai_response_to_anthropic(ll.litellm.ModelResponse(**upstream))
    theirs = theirs if isinstance(theirs, dict) else theirs.model_dump()
    ours = translate_response(upstream, Dialect.CHAT, Dialect.CLAUDE, model="m")

    def meaning(b: dict[str, Any]) -> tuple[Any, ...]:
        text = "".join(c["text"] for c in b["content"] if c["type"] == "text")
        calls = [(c["name"], c["input"]) for c in b["content"] if c["type"] == "tool_use"]
        u = b["usage"]
        return text, calls, b["stop_reason"], (u["input_tokens"], u["output_tokens"])

    assert meaning(ours) == meaning(theirs)


@pytest.mark.parametrize("case", ["text", "tool"])
def test_chat_response_to_responses(ll: SimpleNamespace, case: str) -> None:
    upstream = nonstream_body(Dialect.CHAT, case)
    theirs = ll.responses.transform_chat_completion_response_to_responses_api_response(
        request_input="hi", responses_api_request={}, chat_completion_response=ll.litellm.ModelResponse(**upstream)
    ).model_dump()
    ours = translate_response(upstream, Dialect.CHAT, Dialect.RESPONSES, model="m")

    def meaning(b: dict[str, Any]) -> tuple[Any, ...]:
        text = "".join(
            c["text"] for o in b["output"] if o["type"] == "message" for c in o["content"] if c["type"] == "output_text"
        )
        calls = [
            (o["name"], json.loads(o["arguments"]), o["call_id"]) for o in b["output"] if o["type"] == "function_call"
        ]
        u = b["usage"]
        return text, calls, b["status"], (u["input_tokens"], u["output_tokens"])

    assert meaning(ours) == meaning(theirs)


@pytest.mark.parametrize("case", ["text", "tool"])
def test_claude_stream_to_chat(ll: SimpleNamespace, case: str) -> None:
    events = stream_events(Dialect.CLAUDE, case)
    parser = ll.claude_chunks(None, sync_stream=True)
    theirs = [parser.chunk_parser(json.loads(e.data)).model_dump() for e in events]
    tr = StreamTranslator(Dialect.CLAUDE, Dialect.CHAT, model="m")
    data = b"".join(tr.feed(e) for e in events) + tr.finish()
    ours = [json.loads(e.data) for e in parse_sse(data) if e.data != b"[DONE]"]
    assert _stream_semantics(ours) == _stream_semantics(theirs)


@pytest.mark.parametrize("case", ["text", "tool"])
def test_gemini_stream_to_chat(ll: SimpleNamespace, case: str) -> None:
    events = stream_events(Dialect.GEMINI, case)
    parser = ll.gemini_chunks(None, True, MagicMock())
    theirs = [parser.chunk_parser(json.loads(e.data)).model_dump() for e in events]
    tr = StreamTranslator(Dialect.GEMINI, Dialect.CHAT, model="m")
    data = b"".join(tr.feed(e) for e in events) + tr.finish()
    ours = [json.loads(e.data) for e in parse_sse(data) if e.data != b"[DONE]"]
    assert _stream_semantics(ours) == _stream_semantics(theirs)


def _openai_params(ll_config: Any, body: dict[str, Any], model: str) -> dict[str, Any]:
    wanted = {k: body[k] for k in ("tools", "max_tokens", "temperature") if k in body}
    params: dict[str, Any] = ll_config.map_openai_params(
        non_default_params=wanted, optional_params={}, model=model, drop_params=False
    )
    return params


@pytest.mark.parametrize("case", ["text", "tool"])
def test_chat_request_to_claude(ll: SimpleNamespace, case: str) -> None:
    body = samples.text_request(Dialect.CHAT) if case == "text" else samples.tool_request(Dialect.CHAT)
    model = "claude-sonnet-4-5"
    theirs = ll.anthropic.transform_request(
        model=model,
        messages=copy.deepcopy(body["messages"]),  # litellm edits the list in place
        optional_params=_openai_params(ll.anthropic, body, model),
        litellm_params={},
        headers={},
    )
    ours = translate_request(body, Dialect.CHAT, Dialect.CLAUDE, model=model, stream=False)
    decode = CODECS[Dialect.CLAUDE].decode_request
    assert samples.canonical(decode(ours)) == samples.canonical(decode(theirs))
    assert [t["name"] for t in ours.get("tools", ())] == [t["name"] for t in theirs.get("tools", ())]


@pytest.mark.parametrize("case", ["text", "tool"])
def test_chat_request_to_gemini(ll: SimpleNamespace, case: str) -> None:
    body = samples.text_request(Dialect.CHAT) if case == "text" else samples.tool_request(Dialect.CHAT)
    model = "gemini-2.5-pro"
    theirs = ll.gemini_request._transform_request_body(
        messages=copy.deepcopy(body["messages"]),  # litellm edits the list in place
        model=model,
        optional_params=_openai_params(ll.gemini, body, model),
        custom_llm_provider="gemini",
        litellm_params={},
        cached_content=None,
    )
    ours = translate_request(body, Dialect.CHAT, Dialect.GEMINI, model=model, stream=False)
    decode = CODECS[Dialect.GEMINI].decode_request
    mine, other = decode(ours), decode(dict(theirs))  # litellm writes snake_case keys: we must read them too
    assert samples.canonical(mine) == samples.canonical(other)
    assert [t.name for t in mine.tools] == [t.name for t in other.tools]
    assert mine.max_tokens == other.max_tokens


@pytest.mark.parametrize("case", ["text", "tool"])
def test_claude_request_to_chat(ll: SimpleNamespace, case: str) -> None:
    body = samples.text_request(Dialect.CLAUDE) if case == "text" else samples.tool_request(Dialect.CLAUDE)
    theirs = ll.adapter.translate_anthropic_to_openai(copy.deepcopy(body))[0]
    ours = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="m", stream=False)
    decode = CODECS[Dialect.CHAT].decode_request
    assert samples.canonical(decode(ours)) == samples.canonical(decode(theirs))
    assert ours.get("max_tokens") == theirs.get("max_tokens")


@pytest.mark.parametrize("case", ["text", "tool"])
def test_responses_request_to_chat(ll: SimpleNamespace, case: str) -> None:
    body = samples.text_request(Dialect.RESPONSES) if case == "text" else samples.tool_request(Dialect.RESPONSES)
    optional = {k: v for k, v in body.items() if k not in ("model", "input")}
    theirs = ll.responses.transform_responses_api_request_to_chat_completion_request(
        model="m", input=copy.deepcopy(body["input"]), responses_api_request=optional, custom_llm_provider="openai"
    )
    ours = translate_request(body, Dialect.RESPONSES, Dialect.CHAT, model="m", stream=False)
    decode = CODECS[Dialect.CHAT].decode_request
    assert samples.canonical(decode(ours)) == samples.canonical(decode(theirs))
    assert [t["function"]["name"] for t in ours.get("tools", ())] == [
        t["function"]["name"] for t in theirs.get("tools", ())
    ]
