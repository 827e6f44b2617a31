"""Each codec's one usage parser: every count its dialect reports, in answers and in stream events.

The IR counts the whole prompt as input (cache reads and writes, and Gemini's tool-use prompt,
included) and reasoning inside output; `reported_total` keeps the upstream's own total when it sends
one. Usage records keep each provider's own input count (`native_input_tokens`).
"""

from __future__ import annotations

from typing import Any

import pytest

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.codecs import CODECS
from cliproxy.translate.ir import Usage
from cliproxy.translate.sse import SSEEvent
from cliproxy.translate.usage import native_input_tokens, usage_in_answer, usage_of_body, usage_of_event

CHAT_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 50,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 60, "cache_creation_tokens": 5, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 20, "audio_tokens": 0},
}
RESPONSES_USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 60},
    "output_tokens": 50,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 150,
}
CLAUDE_USAGE = {
    "input_tokens": 10,
    "output_tokens": 50,
    "cache_read_input_tokens": 80,
    "cache_creation_input_tokens": 10,
    "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0},
    "server_tool_use": {"web_search_requests": 0},
}
GEMINI_META = {
    "promptTokenCount": 100,
    "cachedContentTokenCount": 60,
    "toolUsePromptTokenCount": 40,
    "candidatesTokenCount": 30,
    "thoughtsTokenCount": 20,
    "totalTokenCount": 190,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 100}],
}
# (answer, one stream event carrying the same usage, the IR usage, what a usage record keeps as input)
CASES: dict[Dialect, tuple[dict[str, Any], dict[str, Any], Usage, int]] = {
    Dialect.CHAT: (
        {"id": "c", "object": "chat.completion", "choices": [], "usage": CHAT_USAGE},
        {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": CHAT_USAGE},
        Usage(100, 50, 60, 20, 5, 150),
        100,
    ),
    Dialect.RESPONSES: (
        {"id": "resp_1", "object": "response", "output": [], "usage": RESPONSES_USAGE},
        {"type": "response.completed", "response": {"id": "resp_1", "output": [], "usage": RESPONSES_USAGE}},
        Usage(100, 50, 60, 20, 0, 150),
        100,
    ),
    Dialect.CLAUDE: (
        {"id": "msg_1", "type": "message", "content": [], "usage": CLAUDE_USAGE},
        {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": CLAUDE_USAGE}},
        Usage(100, 50, 80, 0, 10, 0),
        10,
    ),
    Dialect.GEMINI: (
        {"candidates": [], "usageMetadata": GEMINI_META},
        {"candidates": [], "usageMetadata": GEMINI_META},
        Usage(140, 50, 60, 20, 0, 190),
        140,
    ),
}


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_every_count_is_read(dialect: Dialect) -> None:
    body, event, usage, native = CASES[dialect]
    assert usage_of_body(dialect, body) == usage
    assert usage_of_event(dialect, event) == usage
    assert usage_in_answer(dialect, jsonio.dumps(body)) == usage
    assert native_input_tokens(dialect, usage) == native
    assert usage.total_tokens == 150 or (dialect is Dialect.GEMINI and usage.total_tokens == 190)


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_no_usage_is_none(dialect: Dialect) -> None:
    body = CASES[dialect][0]
    field = CODECS[dialect].usage_field
    assert usage_of_body(dialect, {k: v for k, v in body.items() if k != field}) is None
    assert usage_of_body(dialect, {field: None}) is None
    assert usage_of_body(dialect, [body]) is None
    assert usage_of_event(dialect, "not an event") is None
    assert usage_in_answer(dialect, b"[1, 2]") is None


def test_floats_and_nulls_are_counts_or_zero() -> None:
    chat = {"usage": {"prompt_tokens": 12.0, "completion_tokens": None, "prompt_tokens_details": None}}
    assert usage_of_body(Dialect.CHAT, chat) == Usage(12, 0, 0, 0, 0, 0)
    responses = {"usage": {"input_tokens": 7, "output_tokens": 3.0, "input_tokens_details": None}}
    assert usage_of_body(Dialect.RESPONSES, responses) == Usage(7, 3)
    gemini = {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}}
    assert usage_of_body(Dialect.GEMINI, gemini) == Usage(5, 2)
    assert usage_of_body(Dialect.GEMINI, gemini).total_tokens == 7  # type: ignore[union-attr]


def test_merge_keeps_the_latest_value_of_each_field() -> None:
    usage = Usage(100, 1, 80, 0, 10)
    usage.merge(Usage(0, 50))
    assert usage == Usage(100, 50, 80, 0, 10)
    usage.merge(Usage(120, 60, 0, 5, 0, 190))
    assert usage == Usage(120, 60, 80, 5, 10, 190) and usage.total_tokens == 190


def claude_events(delta_usage: dict[str, Any]) -> list[dict[str, Any]]:
    start = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 80, "cache_creation_input_tokens": 10}
    return [
        {"type": "message_start", "message": {"id": "m", "model": "c", "content": [], "usage": start}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        {"type": "message_stop"},
    ]


@pytest.mark.parametrize(
    "delta_usage",
    [
        {"output_tokens": 50},  # the output count alone
        {"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": 50},  # nulls: not reported
        {"input_tokens": 10, "cache_read_input_tokens": 80, "cache_creation_input_tokens": 10, "output_tokens": 50},
    ],
    ids=["output-only", "nulls", "cumulative"],
)
def test_claude_streams_report_usage_in_pieces(delta_usage: dict[str, Any]) -> None:
    """The stream decoder (translation) and the event parser plus `merge` (usage records) agree."""
    events = claude_events(delta_usage)
    decoder = CODECS[Dialect.CLAUDE].stream_decoder()
    for event in events:
        decoder.decode(SSEEvent(event["type"], jsonio.dumps(event)))
    want = Usage(100, 50, 80, 0, 10)
    assert getattr(decoder, "usage", None) == want
    merged: Usage | None = None
    for event in events:
        usage = usage_of_event(Dialect.CLAUDE, event)
        if usage is not None:
            if merged is None:
                merged = usage
            else:
                merged.merge(usage)
    assert merged == want and native_input_tokens(Dialect.CLAUDE, merged) == 10


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_translated_answers_carry_the_same_counts(dialect: Dialect) -> None:
    """Encoding IR usage into a dialect and reading it back gives the same counts (totals included)."""
    usage = Usage(140, 50, 60, 20, 0, 190)
    for target in Dialect:
        codec = CODECS[target]
        resp = CODECS[dialect].decode_response(CASES[dialect][0])
        resp.usage = usage
        back = usage_of_body(target, codec.encode_response(resp))
        assert back is not None
        assert (back.input_tokens, back.output_tokens, back.cached_tokens) == (140, 50, 60)
        assert back.total_tokens == 190
        if target is not Dialect.CLAUDE:  # Anthropic reports no reasoning count
            assert back.reasoning_tokens == 20
