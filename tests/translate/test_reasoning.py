"""Reasoning settings across dialects, and the `model(level)` / `model(budget)` suffix."""

from __future__ import annotations

from typing import Any

import pytest

from cliproxy.translate import Dialect
from cliproxy.translate.convert import translate_request
from cliproxy.translate.reasoning import split_thinking_suffix


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-5(high)", ("gpt-5", "high")),
        ("gemini-2.5-pro(8192)", ("gemini-2.5-pro", "8192")),
        ("claude-sonnet-4-5", ("claude-sonnet-4-5", None)),
        ("prefix/model(low)", ("prefix/model", "low")),
        ("odd(model)(-1)", ("odd(model)", "-1")),
        ("()", ("()", None)),
    ],
)
def test_split_thinking_suffix(model: str, expected: tuple[str, str | None]) -> None:
    assert split_thinking_suffix(model) == expected


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "x", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_suffix_budget_to_claude_thinking() -> None:
    out = translate_request(_chat(max_tokens=1000), Dialect.CHAT, Dialect.CLAUDE, model="claude-x(8192)", stream=False)
    assert out["model"] == "claude-x"
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert out["max_tokens"] > 8192  # Claude wants max_tokens above the budget


def test_suffix_level_overrides_body_effort() -> None:
    body = _chat(reasoning_effort="low")
    out = translate_request(body, Dialect.CHAT, Dialect.RESPONSES, model="gpt-5(high)", stream=True)
    assert out["model"] == "gpt-5"
    assert out["reasoning"]["effort"] == "high"
    assert out["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize(
    ("model", "config"),
    [
        ("gemini-2.5-pro(8192)", {"thinkingBudget": 8192}),
        ("gemini-2.5-flash(0)", {"thinkingBudget": 0}),
        ("gemini-2.5-pro(-1)", {"thinkingBudget": -1}),
        ("gemini-2.5-pro(high)", {"thinkingBudget": 24576}),
        ("gemini-3-pro-preview(low)", {"thinkingLevel": "low"}),
        ("gemini-3-pro-preview(xhigh)", {"thinkingLevel": "high"}),
    ],
)
def test_suffix_to_gemini_thinking_config(model: str, config: dict[str, Any]) -> None:
    out = translate_request(_chat(), Dialect.CHAT, Dialect.GEMINI, model=model, stream=False)
    assert out["generationConfig"]["thinkingConfig"] == config
    assert "model" not in out


def test_suffix_zero_turns_claude_thinking_off() -> None:
    body = {"model": "x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    body["thinking"] = {"type": "enabled", "budget_tokens": 4096}
    out = translate_request(body, Dialect.CLAUDE, Dialect.RESPONSES, model="gpt-5(0)", stream=False)
    assert out["reasoning"] == {"effort": "none"}
    out = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="gpt-5(none)", stream=False)
    assert out["reasoning_effort"] == "none"


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, "high"),
        ({"type": "adaptive"}, "medium"),
    ],
)
def test_claude_thinking_to_openai_effort(thinking: dict[str, Any], effort: str) -> None:
    body = {"model": "x", "max_tokens": 64000, "messages": [{"role": "user", "content": "hi"}], "thinking": thinking}
    assert translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="m", stream=False)["reasoning_effort"] == effort
    out = translate_request(body, Dialect.CLAUDE, Dialect.RESPONSES, model="m", stream=False)
    assert out["reasoning"]["effort"] == effort
    assert out["reasoning"]["summary"] == "auto"  # Claude shows thinking: ask for summaries


def test_claude_code_adaptive_with_effort() -> None:
    """Claude Code sends `thinking: adaptive` plus `output_config.effort`."""
    body = {
        "model": "x",
        "max_tokens": 32000,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
    }
    assert translate_request(body, Dialect.CLAUDE, Dialect.RESPONSES, model="m", stream=True)["reasoning"] == {
        "effort": "high"
    }
    gemini = translate_request(body, Dialect.CLAUDE, Dialect.GEMINI, model="gemini-2.5-pro", stream=True)
    # adaptive means "the model decides": Gemini's dynamic budget
    assert gemini["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1, "includeThoughts": False}


def test_openai_effort_to_claude_budget_drops_sampling() -> None:
    body = {"model": "x", "input": "hi", "reasoning": {"effort": "high"}, "temperature": 0.3, "max_output_tokens": 100}
    out = translate_request(body, Dialect.RESPONSES, Dialect.CLAUDE, model="claude-x", stream=False)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert out["max_tokens"] > 24576
    assert "temperature" not in out  # Claude rejects sampling settings while thinking


def test_openai_effort_to_claude_adaptive_never_below_minimum() -> None:
    out = translate_request(_chat(reasoning_effort="minimal"), Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)
    assert out["thinking"]["budget_tokens"] >= 1024


@pytest.mark.parametrize("spelling", ["snake", "camel"])
def test_gemini_thinking_config_both_spellings(spelling: str) -> None:
    tc = (
        {"thinking_budget": 128, "include_thoughts": True}
        if spelling == "snake"
        else {"thinkingBudget": 128, "includeThoughts": True}
    )
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"thinkingConfig": tc}}
    claude = translate_request(body, Dialect.GEMINI, Dialect.CLAUDE, model="c", stream=False)
    assert claude["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert (
        translate_request(body, Dialect.GEMINI, Dialect.CHAT, model="g", stream=False)["reasoning_effort"] == "minimal"
    )
    resp = translate_request(body, Dialect.GEMINI, Dialect.RESPONSES, model="g", stream=False)
    assert resp["reasoning"] == {"effort": "minimal", "summary": "auto"}


def test_gemini_thinking_level_snake_case() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generation_config": {"thinking_config": {"thinking_level": "HIGH"}},
    }
    assert translate_request(body, Dialect.GEMINI, Dialect.CHAT, model="g", stream=False)["reasoning_effort"] == "high"


def test_gemini_budget_zero_disables_claude_thinking() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}},
    }
    assert translate_request(body, Dialect.GEMINI, Dialect.CLAUDE, model="c", stream=False)["thinking"] == {
        "type": "disabled"
    }


def test_suffix_on_same_dialect_bodies() -> None:
    """Passthrough traffic keeps its bytes, except the reasoning fields a suffix asks for."""
    from cliproxy.translate.convert import apply_thinking_suffix

    chat = {"model": "gpt-5(high)", "messages": []}
    assert apply_thinking_suffix(chat, Dialect.CHAT, model="gpt-5(high)") == (
        {"model": "gpt-5", "messages": [], "reasoning_effort": "high"},
        "gpt-5",
    )
    resp = {"model": "x", "input": "hi", "reasoning": {"summary": "auto"}}
    apply_thinking_suffix(resp, Dialect.RESPONSES, model="gpt-5(low)")
    assert resp["reasoning"] == {"summary": "auto", "effort": "low"} and resp["model"] == "gpt-5"
    claude = {"model": "x", "max_tokens": 100, "temperature": 0.5, "messages": []}
    apply_thinking_suffix(claude, Dialect.CLAUDE, model="claude-x(4096)")
    assert claude == {
        "model": "claude-x",
        "max_tokens": 8192,
        "messages": [],
        "thinking": {"type": "enabled", "budget_tokens": 4096},
    }
    gemini = {"contents": [], "generationConfig": {"thinkingConfig": {"include_thoughts": True, "thinking_budget": 5}}}
    _, base = apply_thinking_suffix(gemini, Dialect.GEMINI, model="gemini-2.5-pro(2048)")
    assert base == "gemini-2.5-pro" and "model" not in gemini
    assert gemini["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": True}
    untouched = {"model": "m"}
    assert apply_thinking_suffix(untouched, Dialect.CHAT, model="m") == ({"model": "m"}, "m")
