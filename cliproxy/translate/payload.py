"""Payload rules: edits to the upstream body after translation, chosen by model and protocol.

The rule format, its order and its protocol names follow CLIProxyAPI's `payload:` section.

Order: `default` (only where the ORIGINAL client body lacks the path; first matching rule wins per
path), `default-raw`, `override` (last rule wins), `override-raw`, then `filter` (delete paths).
Paths are gjson-style dotted paths with array indexes (`contents.0.parts`, `a\\.b` for a literal
dot); gjson queries such as `#(…)` and sjson's `-1` append are not supported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect

_MISSING = object()

# The names rules use, as in CLIProxyAPI: `protocol` names the upstream format (a Responses upstream
# is Codex), `from-protocol` the client's.
PROTOCOL: dict[Dialect, str] = {
    Dialect.CHAT: "openai",
    Dialect.RESPONSES: "codex",
    Dialect.CLAUDE: "claude",
    Dialect.GEMINI: "gemini",
}
FROM_PROTOCOL: dict[Dialect, str] = {
    Dialect.CHAT: "openai",
    Dialect.RESPONSES: "responses",
    Dialect.CLAUDE: "claude",
    Dialect.GEMINI: "gemini",
}


@dataclass(frozen=True, slots=True)
class ModelMatch:
    """One `models[]` entry: every condition given must hold."""

    name: str = "*"
    protocol: str | None = None
    from_protocol: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    match: dict[str, Any] = field(default_factory=dict)
    not_match: dict[str, Any] = field(default_factory=dict)
    exist: tuple[str, ...] = ()
    not_exist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    models: tuple[ModelMatch, ...]
    params: dict[str, Any]  # path → value (for filter: path → None)


@dataclass(frozen=True, slots=True)
class PayloadRules:
    default: tuple[Rule, ...] = ()
    default_raw: tuple[Rule, ...] = ()
    override: tuple[Rule, ...] = ()
    override_raw: tuple[Rule, ...] = ()
    filter: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.default or self.default_raw or self.override or self.override_raw or self.filter)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> PayloadRules:
        """From the raw `payload:` mapping of the YAML config; raises ValueError naming the bad entry."""
        if not raw:
            return cls()

        def rules(key: str) -> tuple[Rule, ...]:
            items = raw.get(key) or []
            if not isinstance(items, list):
                raise ValueError(f"payload.{key}: expected a list of rules")
            out = []
            for i, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise ValueError(f"payload.{key}[{i}]: expected a mapping with models and params")
                params = item.get("params") or {}
                if key == "filter":
                    if isinstance(params, str):
                        params = [params]
                    params = dict.fromkeys(params) if isinstance(params, list) else dict(params)
                elif not isinstance(params, Mapping):
                    raise ValueError(f"payload.{key}[{i}].params: expected a mapping of path to value")
                if key.endswith("-raw"):
                    try:
                        params = {p: jsonio.loads(v) if isinstance(v, str | bytes) else v for p, v in params.items()}
                    except ValueError as exc:
                        raise ValueError(f"payload.{key}[{i}].params: not valid JSON ({exc})") from exc
                out.append(Rule(tuple(_model(m) for m in item.get("models") or [{"name": "*"}]), dict(params)))
            return tuple(out)

        return cls(rules("default"), rules("default-raw"), rules("override"), rules("override-raw"), rules("filter"))


def _model(m: Any) -> ModelMatch:
    if isinstance(m, str):
        return ModelMatch(name=m)

    def pairs(v: Any) -> dict[str, Any]:
        if isinstance(v, list):
            out: dict[str, Any] = {}
            for d in v:
                out.update(d)
            return out
        return dict(v or {})

    return ModelMatch(
        name=str(m.get("name") or "*"),
        protocol=m.get("protocol"),
        from_protocol=m.get("from-protocol") or m.get("from_protocol"),
        headers={str(k).lower(): str(v) for k, v in (m.get("headers") or {}).items()},
        match=pairs(m.get("match")),
        not_match=pairs(m.get("not-match") or m.get("not_match")),
        exist=tuple(m.get("exist") or ()),
        not_exist=tuple(m.get("not-exist") or m.get("not_exist") or ()),
    )


def split_path(path: str) -> list[str]:
    """`a.b\\.c.0` → [`a`, `b.c`, `0`]."""
    parts: list[str] = []
    cur: list[str] = []
    it = iter(path)
    for ch in it:
        if ch == "\\":
            cur.append(next(it, ""))
        elif ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def get_path(body: Any, path: str) -> Any:
    """The value at `path`, or `_MISSING`."""
    cur = body
    for key in split_path(path):
        if isinstance(cur, dict):
            if key not in cur:
                return _MISSING
            cur = cur[key]
        elif isinstance(cur, list) and key.isdigit() and int(key) < len(cur):
            cur = cur[int(key)]
        else:
            return _MISSING
    return cur


def has_path(body: Any, path: str) -> bool:
    return get_path(body, path) is not _MISSING


def _descend(cur: Any, key: str, create: bool) -> Any:
    """The child at `key`, copied (shallow) and put back, so edits never reach objects the
    translated body shares with the client's original body."""
    if isinstance(cur, list):
        if not key.isdigit() or int(key) >= len(cur):
            return None
        child = cur[int(key)]
        if isinstance(child, dict | list):
            child = cur[int(key)] = child.copy()
        return child
    if not isinstance(cur, dict):
        return None
    child = cur.get(key)
    if isinstance(child, dict | list):
        child = cur[key] = child.copy()
    elif create:
        child = cur[key] = {}
    else:
        return None
    return child


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Set `path`, creating objects on the way (a numeric key indexes an existing list)."""
    keys = split_path(path)
    cur: Any = body
    for key in keys[:-1]:
        cur = _descend(cur, key, create=True)
        if cur is None:
            return
    last = keys[-1]
    if isinstance(cur, dict):
        cur[last] = value
    elif isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        cur[int(last)] = value


def delete_path(body: dict[str, Any], path: str) -> None:
    keys = split_path(path)
    if not has_path(body, path):
        return
    cur: Any = body
    for key in keys[:-1]:
        cur = _descend(cur, key, create=False)
    last = keys[-1]
    if isinstance(cur, dict):
        cur.pop(last, None)
    elif isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        del cur[int(last)]


def _applies(
    rule: Rule,
    body: dict[str, Any],
    models: list[str],
    protocol: str,
    from_protocol: str,
    headers: Mapping[str, str] | None,
) -> bool:
    for m in rule.models:
        if not any(fnmatchcase(name, m.name) for name in models if name):
            continue
        if m.protocol and m.protocol != protocol:
            continue
        if m.from_protocol and m.from_protocol != from_protocol:
            continue
        if m.headers:
            lower = {k.lower(): v for k, v in (headers or {}).items()}
            if not all(fnmatchcase(lower.get(k, ""), v) for k, v in m.headers.items()):
                continue
        if any(get_path(body, p) != v for p, v in m.match.items()):
            continue
        if any(get_path(body, p) == v for p, v in m.not_match.items()):
            continue
        if not all(has_path(body, p) for p in m.exist) or any(has_path(body, p) for p in m.not_exist):
            continue
        return True
    return False


def apply_payload_rules(
    body: dict[str, Any],
    rules: PayloadRules,
    *,
    models: list[str],
    protocol: str,
    from_protocol: str,
    original: dict[str, Any],
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Apply the rules to `body` in place and return it. `models`: upstream and client model names."""
    if not rules:
        return body
    for group in (rules.default, rules.default_raw):
        seen: set[str] = set()
        for rule in group:
            if not _applies(rule, body, models, protocol, from_protocol, headers):
                continue
            for path, value in rule.params.items():
                if path in seen or has_path(original, path):
                    continue
                seen.add(path)
                set_path(body, path, value)
    for group in (rules.override, rules.override_raw):
        for rule in group:
            if _applies(rule, body, models, protocol, from_protocol, headers):
                for path, value in rule.params.items():
                    set_path(body, path, value)
    for rule in rules.filter:
        if _applies(rule, body, models, protocol, from_protocol, headers):
            for path in rule.params:
                delete_path(body, path)
    return body
