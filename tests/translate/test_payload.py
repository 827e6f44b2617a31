"""Payload rules: default, default-raw, override, override-raw, filter, after translation."""

from __future__ import annotations

from typing import Any

import pytest

from cliproxy.translate.payload import PayloadRules, apply_payload_rules, delete_path, get_path, set_path

RAW: dict[str, Any] = {
    "default": [
        {
            "models": [{"name": "gemini-*", "protocol": "gemini"}],
            "params": {"generationConfig.thinkingConfig.thinkingBudget": 32768},
        },
        {"models": [{"name": "*"}], "params": {"generationConfig.thinkingConfig.thinkingBudget": 1, "x.first": 1}},
        {"models": [{"name": "*"}], "params": {"x.first": 2}},
    ],
    "default-raw": [{"models": [{"name": "gpt-*"}], "params": {"response_format": '{"type":"json_object"}'}}],
    "override": [
        {"models": [{"name": "*", "protocol": "openai"}], "params": {"temperature": 0.1}},
        {"models": [{"name": "*", "protocol": "openai"}], "params": {"temperature": 0.2}},
        {"models": [{"name": "*", "from-protocol": "claude"}], "params": {"messages.0.role": "developer"}},
    ],
    "override-raw": [{"models": [{"name": "gpt-5*"}], "params": {"reasoning": '{"effort":"high"}'}}],
    "filter": [{"models": [{"name": "*"}], "params": ["stream_options", "generationConfig.responseJsonSchema"]}],
}


@pytest.fixture
def rules() -> PayloadRules:
    return PayloadRules.from_config(RAW)


def test_default_only_where_the_client_left_it_out(rules: PayloadRules) -> None:
    body: dict[str, Any] = {"contents": [], "generationConfig": {"responseJsonSchema": {}}}
    out = apply_payload_rules(
        body, rules, models=["gemini-2.5-pro", "alias"], protocol="gemini", from_protocol="openai", original={}
    )
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 32768}}  # first matching rule wins
    assert out["x"] == {"first": 1}
    kept = apply_payload_rules(
        {"generationConfig": {"thinkingConfig": {"thinkingBudget": 5}}},
        rules,
        models=["gemini-2.5-pro"],
        protocol="gemini",
        from_protocol="gemini",
        original={"generationConfig": {"thinkingConfig": {"thinkingBudget": 5}}},
    )
    assert kept["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 5


def test_override_last_wins_raw_values_and_filter(rules: PayloadRules) -> None:
    body: dict[str, Any] = {
        "model": "gpt-5",
        "messages": [{"role": "system"}],
        "stream_options": {"include_usage": True},
    }
    out = apply_payload_rules(
        body, rules, models=["gpt-5", "my-alias"], protocol="openai", from_protocol="claude", original={}
    )
    assert out["temperature"] == 0.2
    assert out["reasoning"] == {"effort": "high"}
    assert out["response_format"] == {"type": "json_object"}
    assert out["messages"][0]["role"] == "developer"
    assert "stream_options" not in out


def test_models_match_the_alias_too(rules: PayloadRules) -> None:
    out = apply_payload_rules(
        {}, rules, models=["upstream-x", "gpt-5-alias"], protocol="codex", from_protocol="openai", original={}
    )
    assert out["reasoning"] == {"effort": "high"}


def test_conditions_match_exist_and_headers() -> None:
    rules = PayloadRules.from_config(
        {
            "override": [
                {
                    "models": [
                        {
                            "name": "*",
                            "match": [{"reasoning.effort": "low"}],
                            "exist": ["tools"],
                            "not-exist": ["tool_choice"],
                            "headers": {"User-Agent": "codex*"},
                        }
                    ],
                    "params": {"tool_choice": "required"},
                }
            ]
        }
    )
    body = {"reasoning": {"effort": "low"}, "tools": []}
    args: dict[str, Any] = {"models": ["m"], "protocol": "codex", "from_protocol": "responses", "original": {}}
    assert "tool_choice" not in apply_payload_rules(dict(body), rules, **args)  # no headers given
    out = apply_payload_rules(dict(body), rules, **args, headers={"user-agent": "codex_exec/0.169.0"})
    assert out["tool_choice"] == "required"
    other = {"reasoning": {"effort": "high"}, "tools": []}
    assert "tool_choice" not in apply_payload_rules(other, rules, **args, headers={"User-Agent": "codex"})


def test_paths() -> None:
    body: dict[str, Any] = {"a": [{"b": 1}, {"b": 2}], "c.d": 3}
    assert get_path(body, "a.1.b") == 2
    assert get_path(body, r"c\.d") == 3
    set_path(body, "a.0.b", 9)
    set_path(body, "x.y.z", True)
    set_path(body, "a.7.b", 1)  # out of range: ignored, not an error
    assert body["a"][0]["b"] == 9 and body["x"] == {"y": {"z": True}}
    delete_path(body, "a.1")
    delete_path(body, "missing.path")
    assert body["a"] == [{"b": 9}]


def test_empty_rules_touch_nothing() -> None:
    body = {"a": 1}
    assert (
        apply_payload_rules(body, PayloadRules.from_config(None), models=[], protocol="", from_protocol="", original={})
        is body
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"default": {"not": "a list"}},
        {"override": ["not a mapping"]},
        {"default-raw": [{"params": {"p": "{bad json"}}]},
    ],
)
def test_bad_config_is_a_clear_error(raw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"payload\."):
        PayloadRules.from_config(raw)


def test_rules_never_edit_objects_shared_with_the_client_body() -> None:
    """The translated body shares sub-objects (tool schemas) with the client's; a failover re-translates it."""
    from cliproxy.translate import Dialect
    from cliproxy.translate.convert import translate_request

    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    client = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    client["tools"] = [{"type": "function", "function": {"name": "t", "parameters": schema}}]
    rules = PayloadRules.from_config(
        {
            "override": [{"params": {"tools.0.input_schema.properties.a.type": "number"}}],
            "filter": [{"params": ["tools.0.input_schema.properties.a"]}],
        }
    )
    body = translate_request(client, Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)
    out = apply_payload_rules(body, rules, models=["c"], protocol="claude", from_protocol="openai", original=client)
    assert out["tools"][0]["input_schema"]["properties"] == {}
    assert schema == {"type": "object", "properties": {"a": {"type": "string"}}}
