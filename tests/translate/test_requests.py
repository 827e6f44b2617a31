"""Request translation details: system entries, images, schemas, tool choice, structured output, signatures."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.convert import CODECS, translate_request
from cliproxy.translate.gemini import SKIP_SIGNATURE
from cliproxy.translate.ir import TextPart
from tests.translate.transcripts import FIXTURES

PNG = "iVBORw0KGgo="


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = jsonio.loads((FIXTURES / "requests" / name).read_bytes())
    return data


def test_claude_code_mid_conversation_system_survives() -> None:
    """Claude Code puts a `role: system` entry after the user turn; every target keeps its text."""
    body = _fixture("claude_code.json")
    mid = body["messages"][1]["content"][0]["text"]
    chat = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="gpt-5", stream=True)
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user", "system"]
    assert chat["messages"][2]["content"] == mid
    assert len(chat["tools"]) == len(body["tools"])
    responses = translate_request(body, Dialect.CLAUDE, Dialect.RESPONSES, model="gpt-5", stream=True)
    assert [(i["role"], i["content"][0]["text"][:20]) for i in responses["input"]][-1] == ("developer", mid[:20])
    assert responses["instructions"].startswith("x-anthropic-billing-header")
    gemini = translate_request(body, Dialect.CLAUDE, Dialect.GEMINI, model="gemini-2.5-pro", stream=True)
    texts = [p.get("text") for c in gemini["contents"] for p in c["parts"]]
    assert mid in texts
    assert all(c["role"] in ("user", "model") for c in gemini["contents"])


def test_codex_tool_loop_to_every_dialect() -> None:
    body = _fixture("codex_toolloop.json")
    for dst in (Dialect.CHAT, Dialect.CLAUDE, Dialect.GEMINI):
        out = translate_request(body, Dialect.RESPONSES, dst, model="m", stream=True)
        req = CODECS[dst].decode_request(out)
        names = [t.name for t in req.tools]
        assert "exec_command" in names and "close_agent" in names  # namespace tools are flattened
        system = "".join(p.text for p in req.system)  # leading developer messages become the system prompt
        assert "Codex CLI" in system and "<skills_instructions>" in system
        calls = [p for m in req.messages for p in m.parts if type(p).__name__ == "ToolCallPart"]
        assert [c.name for c in calls] == ["exec_command"]


def test_claude_rejects_nothing_we_send_for_codex_history() -> None:
    out = translate_request(_fixture("codex_toolloop.json"), Dialect.RESPONSES, Dialect.CLAUDE, model="c", stream=True)
    roles = [m["role"] for m in out["messages"]]
    assert roles[0] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))  # alternating turns
    assert out["messages"][-1]["content"][0]["type"] == "tool_result"
    assert out["max_tokens"] > 0


@pytest.mark.parametrize("src", [Dialect.CHAT, Dialect.RESPONSES])
def test_images_data_url_and_url(src: Dialect) -> None:
    if src is Dialect.CHAT:
        content: list[dict[str, Any]] = [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]
        body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": content}]}
    else:
        content = [
            {"type": "input_text", "text": "what?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
        ]
        body = {"model": "m", "input": [{"role": "user", "content": content}]}
    claude = translate_request(body, src, Dialect.CLAUDE, model="c", stream=False)
    blocks = claude["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    gemini = translate_request(body, src, Dialect.GEMINI, model="g", stream=False)
    parts = gemini["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2]["fileData"]["fileUri"] == "https://example.com/cat.jpg"
    other = Dialect.RESPONSES if src is Dialect.CHAT else Dialect.CHAT
    back = CODECS[other].decode_request(translate_request(body, src, other, model="o", stream=False))
    images = [p for p in back.messages[0].parts if not isinstance(p, TextPart)]
    assert [(getattr(i, "data", None), getattr(i, "url", None)) for i in images] == [
        (PNG, None),
        (None, "https://example.com/cat.jpg"),
    ]


def test_claude_base64_image_to_openai_data_url() -> None:
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}}
    body = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": [img]}]}
    chat = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="m", stream=False)
    assert chat["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}}
    ]


def test_gemini_schema_is_upper_case_and_cleaned() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "city": {"type": ["string", "null"], "description": "name"},
            "days": {"type": "array", "items": {"type": "integer"}},
            "unit": {"const": "c"},
        },
        "required": ["city"],
    }
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    body["tools"] = [{"type": "function", "function": {"name": "w", "parameters": schema}}]
    out = translate_request(body, Dialect.CHAT, Dialect.GEMINI, model="g", stream=False)
    params = out["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params == {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "nullable": True, "description": "name"},
            "days": {"type": "ARRAY", "items": {"type": "INTEGER"}},
            "unit": {"enum": ["c"], "type": "STRING"},
        },
        "required": ["city"],
    }
    # and back: Gemini's upper-case types become JSON-schema types for the other dialects
    chat = translate_request(out, Dialect.GEMINI, Dialect.CHAT, model="m", stream=False)
    assert chat["tools"][0]["function"]["parameters"]["properties"]["days"]["items"]["type"] == "integer"


@pytest.mark.parametrize(
    ("choice", "claude", "gemini", "responses"),
    [
        ("auto", {"type": "auto"}, {"mode": "AUTO"}, "auto"),
        ("required", {"type": "any"}, {"mode": "ANY"}, "required"),
        ("none", {"type": "none"}, {"mode": "NONE"}, "none"),
        (
            {"type": "function", "function": {"name": "w"}},
            {"type": "tool", "name": "w"},
            {"mode": "ANY", "allowedFunctionNames": ["w"]},
            {"type": "function", "name": "w"},
        ),
    ],
)
def test_tool_choice(choice: Any, claude: dict[str, Any], gemini: dict[str, Any], responses: Any) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": choice}
    body["tools"] = [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]
    assert translate_request(body, Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)["tool_choice"] == claude
    out = translate_request(body, Dialect.CHAT, Dialect.GEMINI, model="g", stream=False)
    assert out["toolConfig"]["functionCallingConfig"] == gemini
    assert translate_request(body, Dialect.CHAT, Dialect.RESPONSES, model="r", stream=False)["tool_choice"] == responses


def test_parallel_tool_calls_off_maps_to_claude() -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "parallel_tool_calls": False}
    body["tools"] = [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]
    out = translate_request(body, Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_sampling_stop_and_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 77,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}},
    }
    claude = translate_request(body, Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)
    assert (claude["max_tokens"], claude["temperature"], claude["top_p"], claude["stop_sequences"]) == (
        77,
        0.5,
        0.9,
        ["END"],
    )
    assert claude["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    gemini = translate_request(body, Dialect.CHAT, Dialect.GEMINI, model="g", stream=False)["generationConfig"]
    assert gemini == {
        "maxOutputTokens": 77,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    resp = translate_request(body, Dialect.CHAT, Dialect.RESPONSES, model="r", stream=False)
    assert resp["text"] == {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}}
    assert (resp["max_output_tokens"], resp["temperature"], resp["top_p"]) == (77, 0.5, 0.9)


def test_json_object_mode() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}
    gemini = translate_request(body, Dialect.CHAT, Dialect.GEMINI, model="g", stream=False)
    assert gemini["generationConfig"] == {"responseMimeType": "application/json"}
    resp = translate_request(body, Dialect.CHAT, Dialect.RESPONSES, model="r", stream=False)
    assert resp["text"] == {"format": {"type": "json_object"}}


def test_stream_flag_per_target() -> None:
    body = {"model": "m", "input": "hi"}
    chat = translate_request(body, Dialect.RESPONSES, Dialect.CHAT, model="m", stream=True)
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert translate_request(body, Dialect.RESPONSES, Dialect.CLAUDE, model="m", stream=True)["stream"] is True
    assert "stream" not in translate_request(body, Dialect.RESPONSES, Dialect.GEMINI, model="m", stream=True)
    assert "stream" not in translate_request(body, Dialect.RESPONSES, Dialect.CLAUDE, model="m", stream=False)


def test_user_and_cache_marks() -> None:
    body = {
        "model": "c",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u-1"},
    }
    assert translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="m", stream=False)["user"] == "u-1"
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "u-2"}
    assert translate_request(chat, Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)["metadata"] == {
        "user_id": "u-2"
    }
    req = CODECS[Dialect.CLAUDE].decode_request(body)
    assert req.system[0].cache


# ---- thinking signatures: carried to the family that made them, dropped elsewhere ---------------


def _claude_history(signature: str) -> dict[str, Any]:
    return {
        "model": "c",
        "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "let me look", "signature": signature},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        ],
        "tools": [{"name": "w", "input_schema": {"type": "object"}}],
    }


def test_native_claude_signature_is_dropped_for_other_families() -> None:
    body = _claude_history("sig-claude")
    for dst in (Dialect.CHAT, Dialect.RESPONSES, Dialect.GEMINI):
        out = translate_request(body, Dialect.CLAUDE, dst, model="m", stream=False)
        assert b"sig-claude" not in jsonio.dumps(out), dst


def test_openai_reasoning_round_trips_through_a_claude_client() -> None:
    """encrypted_content shown to a Claude client comes back to a Responses upstream intact."""
    from cliproxy.translate.convert import translate_response

    upstream = {
        "id": "resp_1",
        "status": "completed",
        "output": [
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "hmm"}],
                "encrypted_content": "ENC",
            },
            {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{}"},
        ],
    }
    claude_answer = translate_response(upstream, Dialect.RESPONSES, Dialect.CLAUDE, model="m")
    thinking = claude_answer["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"] != "ENC"  # wrapped, marked as OpenAI's
    body = _claude_history(thinking["signature"])
    to_codex = translate_request(body, Dialect.CLAUDE, Dialect.RESPONSES, model="gpt-5", stream=True)
    reasoning = [i for i in to_codex["input"] if i["type"] == "reasoning"]
    assert reasoning[0]["encrypted_content"] == "ENC"
    assert reasoning[0]["summary"] == [{"type": "summary_text", "text": "let me look"}]
    to_claude = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="c", stream=True)
    assert b"ENC" not in jsonio.dumps(to_claude)


def test_claude_signature_round_trips_through_a_codex_client() -> None:
    """A Claude thinking signature shown to a Responses client reaches Claude again, thinking kept on."""
    from cliproxy.translate.convert import translate_response

    upstream = {
        "id": "msg_1",
        "content": [
            {"type": "thinking", "thinking": "plan", "signature": "SIG"},
            {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    answer = translate_response(upstream, Dialect.CLAUDE, Dialect.RESPONSES, model="m")
    reasoning, call = answer["output"]
    follow_up = {
        "model": "m",
        "reasoning": {"effort": "medium"},
        "input": [
            {"role": "user", "content": "weather?"},
            reasoning,
            call,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
        ],
        "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
    }
    claude = translate_request(follow_up, Dialect.RESPONSES, Dialect.CLAUDE, model="c", stream=True)
    assistant = claude["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "plan", "signature": "SIG"}
    assert claude["thinking"]["type"] == "enabled"
    chat = translate_request(follow_up, Dialect.RESPONSES, Dialect.CHAT, model="g", stream=True)
    assert b"SIG" not in jsonio.dumps(chat)


def test_claude_thinking_turned_off_when_history_lost_its_signature() -> None:
    """Claude rejects a thinking request whose last tool turn lacks its signed thinking block."""
    body = {
        "model": "m",
        "reasoning_effort": "high",
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
    }
    out = translate_request(body, Dialect.CHAT, Dialect.CLAUDE, model="c", stream=False)
    assert "thinking" not in out


def test_gemini_function_calls_get_a_signature_placeholder() -> None:
    from tests.translate import samples

    out = translate_request(
        samples.tool_request(Dialect.CHAT), Dialect.CHAT, Dialect.GEMINI, model="gemini-3", stream=False
    )
    call = out["contents"][1]["parts"][0]
    assert call["thoughtSignature"] == SKIP_SIGNATURE
    assert out["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"content": "sunny"},
    }


def test_gemini_ids_synthesised_and_paired_by_name() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "both"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "a", "args": {"n": 1}}},
                    {"functionCall": {"name": "b", "args": {}}},
                    {"functionCall": {"name": "a", "args": {"n": 2}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "a", "response": {"content": "one"}}},
                    {"functionResponse": {"name": "b", "response": {"result": {"ok": True}}}},
                    {"functionResponse": {"name": "a", "response": {"content": "two"}}},
                ],
            },
        ]
    }
    chat = translate_request(body, Dialect.GEMINI, Dialect.CHAT, model="m", stream=False)
    calls = chat["messages"][1]["tool_calls"]
    assert all(c["id"].startswith("call_") for c in calls)
    assert len({c["id"] for c in calls}) == 3
    results = {m["tool_call_id"]: m["content"] for m in chat["messages"][2:]}
    assert results == {calls[0]["id"]: "one", calls[1]["id"]: '{"ok":true}', calls[2]["id"]: "two"}


def test_gemini_schema_drops_what_gemini_rejects() -> None:
    from cliproxy.translate.gemini import schema_to_gemini

    schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "when": {"type": "string", "format": "date-time"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "level": {"type": "integer", "enum": [1, 2]},
        },
        "required": ["url", "ghost"],
    }
    assert schema_to_gemini(schema) == {
        "type": "OBJECT",
        "properties": {
            "url": {"type": "STRING"},
            "when": {"type": "STRING", "format": "date-time"},
            "maybe": {"nullable": True, "type": "INTEGER"},
            "level": {"type": "STRING", "enum": ["1", "2"]},
        },
        "required": ["url"],
    }


def test_openai_limits_long_ids_and_user() -> None:
    """OpenAI caps call ids (40 chat / 64 Responses) and `user` (64); long foreign values are adapted."""
    long_id = "toolu_" + "x" * 80
    body = {
        "model": "c",
        "max_tokens": 10,
        "metadata": {"user_id": '{"device_id":"' + "d" * 64 + '"}'},
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": long_id, "name": "w", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": long_id, "content": "ok"}]},
        ],
    }
    chat = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="m", stream=False)
    call_id = chat["messages"][1]["tool_calls"][0]["id"]
    assert len(call_id) <= 40 and chat["messages"][2]["tool_call_id"] == call_id
    assert "user" not in chat
    resp = translate_request(body, Dialect.CLAUDE, Dialect.RESPONSES, model="m", stream=False)
    ids = [i["call_id"] for i in resp["input"] if "call_id" in i]
    assert len(ids) == 2 and ids[0] == ids[1] and len(ids[0]) <= 64
    assert "user" not in resp
    again = translate_request(body, Dialect.CLAUDE, Dialect.CHAT, model="m", stream=False)
    assert again["messages"][1]["tool_calls"][0]["id"] == call_id  # stable across turns
