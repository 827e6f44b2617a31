"""The pure rules behind tool fitting: object roots for schemas, short names within each wire's limits."""

from __future__ import annotations

from cliproxy.translate.tool_names import CLAUDE_NAMES, GEMINI_NAMES, OPENAI_NAMES
from cliproxy.translate.tool_schema import object_root


def test_an_object_root_is_returned_as_is() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert object_root(schema) is schema


def test_all_of_keeps_every_requirement_and_refs_are_resolved() -> None:
    schema = {
        "$defs": {"Where": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        "allOf": [
            {"$ref": "#/$defs/Where"},
            {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]},
        ],
    }
    fitted = object_root(schema)
    assert fitted["type"] == "object" and "allOf" not in fitted
    assert set(fitted["properties"]) == {"city", "days"}
    assert fitted["required"] == ["city", "days"]


def test_one_of_requires_only_what_every_branch_requires() -> None:
    schema = {
        "type": "object",
        "properties": {"mode": {"type": "string"}},
        "required": ["mode"],
        "oneOf": [
            {"properties": {"a": {"type": "string"}, "id": {"type": "string"}}, "required": ["a", "id"]},
            {"properties": {"b": {"type": "string"}, "id": {"type": "string"}}, "required": ["b", "id"]},
        ],
    }
    fitted = object_root(schema)
    assert set(fitted["properties"]) == {"mode", "a", "b", "id"}
    assert fitted["required"] == ["mode", "id"]


def test_missing_or_empty_schemas_become_empty_objects() -> None:
    assert object_root(None) == {"type": "object", "properties": {}}
    assert object_root({"properties": {"x": {"type": "string"}}})["type"] == "object"


def test_short_names_are_deterministic_unique_and_valid() -> None:
    long = "mcp__" + "s" * 40 + "__" + "do_the_thing_" * 5
    twin = long + "2"
    for rule in (OPENAI_NAMES, GEMINI_NAMES):
        short, other = rule.fit(long), rule.fit(twin)
        assert short == rule.fit(long) and short != other
        assert rule.valid.fullmatch(short) and rule.valid.fullmatch(other)
        assert short.startswith("mcp__do_the_thing")  # the tool's own name, not its server's
    assert CLAUDE_NAMES.fit(long) == long  # Claude takes up to 128 characters


def test_names_with_characters_a_target_refuses() -> None:
    assert OPENAI_NAMES.fit("weather.get") != "weather.get"
    assert OPENAI_NAMES.valid.fullmatch(OPENAI_NAMES.fit("weather.get"))
    assert GEMINI_NAMES.fit("weather.get") == "weather.get"  # Gemini takes dots
    assert GEMINI_NAMES.valid.fullmatch(GEMINI_NAMES.fit("1st-tool"))  # but wants a letter first
    assert OPENAI_NAMES.fit("get_weather") == "get_weather"
