"""Tool input schemas with an object at the root, as Claude and OpenAI require.

Claude wants `type: object` at the root of `input_schema` and refuses a root `oneOf`/`anyOf`/
`allOf`; OpenAI says the same of function parameters. MCP servers and Codex tools do send such
roots ("give either a path or a URL"). The combinator is folded into one object: every property of
every branch is kept, and a property is required only when every alternative requires it (all of an
`allOf`'s requirements hold). Nested combinators stay where they are: only the root is refused.
"""

from __future__ import annotations

from typing import Any

_COMBINATORS = ("anyOf", "oneOf", "allOf")
_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def object_root(schema: Any) -> dict[str, Any]:
    """`schema` when its root already is a plain object schema, else an object schema that keeps its properties."""
    if (
        type(schema) is dict
        and schema.get("type") == "object"
        and "anyOf" not in schema
        and "oneOf" not in schema
        and "allOf" not in schema
    ):
        return schema
    if not isinstance(schema, dict) or not schema:
        return dict(_EMPTY_OBJECT)
    out = {k: v for k, v in schema.items() if k not in _COMBINATORS}
    out["type"] = "object"
    properties: dict[str, Any] = dict(out.get("properties") or {})
    required: list[str] = list(out.get("required") or [])
    for key in _COMBINATORS:
        branches = [_resolved(b, schema) for b in schema.get(key) or ()]
        branches = [b for b in branches if isinstance(b, dict)]
        if not branches:
            continue
        for branch in branches:
            for name, prop in (branch.get("properties") or {}).items():
                properties.setdefault(name, prop)
        needed = [set(b.get("required") or ()) for b in branches]
        common = set.union(*needed) if key == "allOf" else set.intersection(*needed)
        required.extend(r for r in sorted(common) if r not in required)
    out["properties"] = properties
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    return out


def _resolved(branch: Any, root: dict[str, Any]) -> Any:
    """A local `$ref` (`#/$defs/X`, `#/definitions/X`) replaced by its definition."""
    if not isinstance(branch, dict) or not isinstance(branch.get("$ref"), str):
        return branch
    ref = branch["$ref"]
    for prefix, section in (("#/$defs/", "$defs"), ("#/definitions/", "definitions")):
        if ref.startswith(prefix):
            found = (root.get(section) or {}).get(ref[len(prefix) :])
            if isinstance(found, dict):
                return found
    return branch
