"""Usage extraction on any body or event (also passthrough traffic), and the local token estimate."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.ir import Usage
from cliproxy.translate.tokens import count_tokens_estimate
from cliproxy.translate.usage import usage_of_body as usage_from_response
from cliproxy.translate.usage import usage_of_event as usage_from_event
from tests.translate.transcripts import nonstream_body, stream_events


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_usage_from_response(dialect: Dialect) -> None:
    u = usage_from_response(dialect, nonstream_body(dialect, "text"))
    assert u is not None and (u.input_tokens, u.output_tokens) == (5, 3)


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_usage_from_events(dialect: Dialect) -> None:
    found = [
        u
        for e in stream_events(dialect, "text")
        if e.data != b"[DONE]"
        for u in [usage_from_event(dialect, jsonio.loads(e.data))]
        if u is not None
    ]
    assert found
    assert max(u.input_tokens for u in found) == 5
    assert max(u.output_tokens for u in found) == 3


def test_usage_details() -> None:
    chat = {"usage": {"prompt_tokens": 100, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 60},
                      "completion_tokens_details": {"reasoning_tokens": 20}}}  # fmt: skip
    assert usage_from_response(Dialect.CHAT, chat) == Usage(100, 50, 60, 20, 0)
    claude = {
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 80,
            "cache_creation_input_tokens": 10,
        }
    }
    assert usage_from_response(Dialect.CLAUDE, claude) == Usage(100, 5, 80, 0, 10)
    gemini = {"usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 30, "thoughtsTokenCount": 20,
                                "cachedContentTokenCount": 60}}  # fmt: skip
    assert usage_from_response(Dialect.GEMINI, gemini) == Usage(100, 50, 60, 20, 0)
    responses = {"usage": {"input_tokens": 100, "output_tokens": 50, "input_tokens_details": {"cached_tokens": 60},
                           "output_tokens_details": {"reasoning_tokens": 20}}}  # fmt: skip
    assert usage_from_response(Dialect.RESPONSES, responses) == Usage(100, 50, 60, 20, 0)
    assert usage_from_response(Dialect.CHAT, {}) is None


def _claude_body(text: str) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}], "system": "be brief"}


def test_count_tokens_estimate_offline() -> None:
    short = count_tokens_estimate(_claude_body("hi"), Dialect.CLAUDE, model="gpt-5")
    long = count_tokens_estimate(_claude_body("hello world " * 200), Dialect.CLAUDE, model="gpt-5")
    assert 0 < short < long
    gemini = {"contents": [{"role": "user", "parts": [{"text": "hello world " * 50}]}]}
    assert count_tokens_estimate(gemini, Dialect.GEMINI, model="unknown-model-xyz") > 50


def test_translation_does_not_import_litellm() -> None:
    """litellm costs seconds of import; the server path (convert) must not pull it in."""
    code = "import sys, cliproxy.translate.convert; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_count_tokens_with_image_url_stays_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    attempts: list[Any] = []

    def no_network(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    img = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    body = {"model": "c", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is it"}, img]}]}
    assert count_tokens_estimate(body, Dialect.CLAUDE, model="gpt-4o") > 3
    assert attempts == []
