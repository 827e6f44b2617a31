"""Keys cliproxy accepts so that CLIProxyAPI configs load unchanged, but does not implement.

No key may do nothing silently: each one here is reported when a config sets it to something other
than an inert value (absent, false, zero, empty), at load, by `--check` and in the management
`reload-status`, with the reason it has no effect. Every other key of the schema is implemented
(a test walks `config.example.yaml` and the schema against this list).

To add one, add its YAML path and the reason: dotted keys, `[]` for "any item of a list", `*` for
"any key of a mapping" (`oauth-model-alias.*[].display-name`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_PANEL_SHIPPED = "the control panel ships inside the package; it is never downloaded or updated"
_LISTING_ONLY = "model metadata CLIProxyAPI's panel shows; cliproxy does not use it"

# YAML path → why it has no effect in cliproxy.
COMPAT_ONLY_KEYS: Mapping[str, str] = {
    # ------------------------------------------------------------------ top level
    "pprof": "cliproxy has no pprof server",
    "plugins": "cliproxy has no plugin system",
    "commercial-mode": "cliproxy has no commercial mode",
    "save-cooldown-status": "cooldowns are not written to .cds files",
    "disable-image-generation": "cliproxy serves no image generation",
    "gpt-image-2-base-model": "cliproxy serves no image generation",
    "video-result-auth-cache-ttl": "cliproxy serves no video endpoints",
    "auth-auto-refresh-workers": "the refresh scheduler sizes itself",
    "quota-exceeded": "no provider cliproxy serves switches projects or preview models",
    "codex": "the Codex CLIProxyAPI switches are not implemented",
    "xai": "CLIProxyAPI's xAI switches are not implemented (xai-api-key and xai auth files are)",
    "antigravity": "CLIProxyAPI's Antigravity switches are not implemented (antigravity auth files are)",
    "antigravity-signature-cache-enabled": "Antigravity thinking signatures are not cached",
    "antigravity-signature-bypass-strict": "Antigravity thinking signatures are not cached",
    "codex-header-defaults": "Codex requests keep their own headers",
    "credential-concurrency": "a CLIProxyAPI Home setting",
    "credential-in-flight": "a CLIProxyAPI Home setting",
    "kiro": "cliproxy has no Kiro provider",
    "ampcode": "cliproxy has no Amp integration",
    # ------------------------------------------------------------------ nested
    "remote-management.disable-auto-update-panel": _PANEL_SHIPPED,
    "remote-management.panel-github-repository": _PANEL_SHIPPED,
    "claude-header-defaults.stabilize-device-profile": "Claude Code's own headers always pass unchanged",
    "claude-api-key[].cloak.relaxed-system-prompt": "the cloaked system prompt has one shape",
    "*[].models[].is-compat": _LISTING_ONLY,
    "*[].models[].image": _LISTING_ONLY,
    "*[].models[].input-modalities": _LISTING_ONLY,
    "*[].models[].output-modalities": _LISTING_ONLY,
    "*[].models[].thinking": "thinking levels are not checked against a list",
    "oauth-model-alias.*[].display-name": _LISTING_ONLY,
}


def _inert(value: Any) -> bool:
    """A value that asks for nothing: absent, false, zero, empty, or a mapping of such values."""
    if isinstance(value, Mapping):
        return all(_inert(v) for v in value.values())
    if isinstance(value, list | tuple):
        return not value
    return value is None or value is False or value == 0 or value == ""


def _walk(node: Any, pattern: list[str], where: str) -> Iterator[tuple[str, Any]]:
    """Every (path, value) of `node` that `pattern` names."""
    if not pattern:
        yield where, node
        return
    head, rest = pattern[0], pattern[1:]
    list_item = head.endswith("[]")
    key = head[:-2] if list_item else head
    if not isinstance(node, Mapping):
        return
    keys = [k for k in node if isinstance(k, str)] if key == "*" else [key] if key in node else []
    for name in keys:
        child, path = node[name], f"{where}.{name}" if where else name
        if not list_item:
            yield from _walk(child, rest, path)
        elif isinstance(child, list):
            for index, item in enumerate(child):
                yield from _walk(item, rest, f"{path}[{index}]")


def compat_only_warnings(raw: Mapping[str, Any]) -> list[str]:
    """One line per key of the raw YAML mapping that is set but has no effect in cliproxy."""
    out: dict[str, None] = {}
    for pattern, reason in COMPAT_ONLY_KEYS.items():
        for path, value in _walk(raw, pattern.split("."), ""):
            if not _inert(value):
                out[f"{path}: accepted for CLIProxyAPI compatibility, no effect in cliproxy ({reason})"] = None
    return list(out)


def top_level_compat_keys() -> frozenset[str]:
    """Top-level keys that are compatibility-only as a whole (the loader does not call them unknown)."""
    return frozenset(path for path in COMPAT_ONLY_KEYS if "." not in path and "[" not in path)
