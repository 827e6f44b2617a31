"""JSON schema ⇄ Gemini's `Schema`, the OpenAPI subset its function declarations accept."""

from __future__ import annotations

from typing import Any

# JSON-schema keys Gemini's OpenAPI-subset `Schema` accepts; anything else is a 400.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}


def schema_to_gemini(schema: Any) -> Any:
    """JSON schema → Gemini Schema: upper-case types, `nullable` for `["x","null"]`, unknown keys dropped.

    Gemini answers 400 to anything outside its OpenAPI subset (`$schema`, `additionalProperties`,
    `const`, `format: uri`, a `{"type": "null"}` branch…), which tool schemas from Claude Code and
    Codex routinely contain.
    """
    if isinstance(schema, list):
        return [schema_to_gemini(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "type":
            if isinstance(v, list):
                kinds = [t for t in v if t != "null"]
                if len(kinds) < len(v):
                    out["nullable"] = True
                v = kinds[0] if kinds else "string"
            out["type"] = str(v).upper()
        elif k == "properties" and isinstance(v, dict):
            out["properties"] = {name: schema_to_gemini(s) for name, s in v.items()}
        elif k == "items":
            out[k] = schema_to_gemini(v)
        elif k in ("anyOf", "oneOf") and isinstance(v, list):
            branches = [b for b in v if not (isinstance(b, dict) and b.get("type") == "null")]
            if len(branches) < len(v):
                out["nullable"] = True
            if len(branches) == 1:
                out.update(schema_to_gemini(branches[0]))
            elif branches:
                out["anyOf"] = schema_to_gemini(branches)
        elif k == "const":
            out["enum"] = [str(v)]
        elif k == "enum" and isinstance(v, list):
            out["enum"] = [str(e) for e in v]
        elif k in _SCHEMA_KEYS:
            out[k] = v
    if "enum" in out:
        out["type"] = "STRING"  # Gemini only takes enums of strings
    fmt = out.get("format")
    if fmt is not None and fmt not in _FORMATS.get(out.get("type", ""), ()):
        del out["format"]
    if out.get("type") == "OBJECT" and "required" in out and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


def schema_from_gemini(schema: Any) -> Any:
    """Gemini Schema → JSON schema: lower-case types (the other dialects reject `OBJECT`)."""
    if isinstance(schema, list):
        return [schema_from_gemini(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "type" and isinstance(v, str):
            out["type"] = v.lower()
        elif k == "properties" and isinstance(v, dict):
            out["properties"] = {name: schema_from_gemini(s) for name, s in v.items()}
        elif k in ("items", "anyOf"):
            out[k] = schema_from_gemini(v)
        elif k not in ("propertyOrdering", "nullable"):
            out[k] = v
    return out
