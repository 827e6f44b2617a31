"""Token counts from whole answers: a long answer is read from its usage object alone, and must
give exactly what parsing the whole answer gives, in every dialect, whatever the content holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cliproxy.translate import Dialect
from cliproxy.translate.usage import WHOLE_PARSE_BELOW
from cliproxy.translate.usage import usage_in_answer as tokens_in_answer
from cliproxy.translate.usage import usage_of_body as tokens_from

LONG_TEXT = 'He said "usage" twice: {"usage": {"prompt_tokens": 999}} ' * 200  # escaped inside JSON

ANSWERS: dict[Dialect, dict[str, Any]] = {
    Dialect.CHAT: {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": LONG_TEXT}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 3, "audio_tokens": 0},
        },
        "system_fingerprint": "fp_1",
    },
    Dialect.CLAUDE: {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "text", "text": LONG_TEXT},
            # A tool input is a real JSON object: a "usage" key in it comes before the answer's own.
            {"type": "tool_use", "id": "toolu_1", "name": "report", "input": {"usage": {"input_tokens": 777}}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 12,
            "output_tokens": 40,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 7,
            "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": {"web_search_requests": 0},
        },
    },
    Dialect.GEMINI: {
        "candidates": [{"content": {"role": "model", "parts": [{"text": LONG_TEXT}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 8,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 5,
            "totalTokenCount": 33,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    },
    Dialect.RESPONSES: {
        "id": "resp_1",
        "object": "response",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": LONG_TEXT}]}],
        "usage": {
            "input_tokens": 30,
            "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": 50,
            "output_tokens_details": {"reasoning_tokens": 20},
            "total_tokens": 80,
        },
    },
}


@pytest.mark.parametrize("dialect", list(ANSWERS))
def test_long_answer_tokens_match_a_whole_parse(dialect: Dialect) -> None:
    answer = ANSWERS[dialect]
    data = json.dumps(answer).encode()
    assert len(data) > WHOLE_PARSE_BELOW
    expected = tokens_from(dialect, answer)
    assert expected is not None and expected.input_tokens and expected.output_tokens
    assert tokens_in_answer(dialect, data) == expected
    compact = json.dumps(answer, separators=(",", ":")).encode()
    assert tokens_in_answer(dialect, compact) == expected


@pytest.mark.parametrize("dialect", list(ANSWERS))
def test_short_answers_and_answers_without_usage(dialect: Dialect) -> None:
    short = {k: v for k, v in ANSWERS[dialect].items() if k not in ("choices", "content", "candidates", "output")}
    assert tokens_in_answer(dialect, json.dumps(short).encode()) == tokens_from(dialect, short)
    bare = {"id": "x", "text": LONG_TEXT}
    assert tokens_in_answer(dialect, json.dumps(bare).encode()) is None
    assert tokens_in_answer(dialect, b"not json " * 400) is None
