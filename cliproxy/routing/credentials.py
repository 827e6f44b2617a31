"""Upstream credentials synthesised from the config (spec §5.2) and from auth-dir files.

Each config key entry becomes one immutable `Credential` with a stable id (spec §4), so the
routing state keyed by that id (cooldowns, cursors) survives reloads that leave the identity
fields alone. Everything a request needs from a credential is precomputed here: the upstream
header dict (content type, auth, custom headers), the `$Header` copies, the effective proxy.

Auth-dir credentials plug in through `CredentialSource`: an auth file object that has
`to_credential(config)` returns its own `Credential` (usually with its own `Executor` subclass).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from cliproxy.config.model import Config, ModelEntry, OpenAICompatibility
from cliproxy.translate import Dialect
from cliproxy.upstream import EXECUTORS
from cliproxy.upstream.base import Executor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """One client-visible model of a credential: the id clients send and the upstream name(s) sent."""

    id: str  # client-visible, without the credential's prefix
    upstream: tuple[str, ...]  # several names = an alias pool (round-robin, next name on early failure)
    display_name: str = ""
    context_length: int | None = None
    max_output_tokens: int | None = None
    created: int = 0
    force_mapping: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Credential:
    """One upstream identity: where to send, how to authenticate, what it serves."""

    id: str
    kind: str  # executor kind: "openai-compatibility", "claude", "codex", "gemini", "vertex", OAuth kinds…
    provider: str  # spec §5.1 provider key ("gemini", "openai-compatible-<name>"…)
    executor: Executor
    api_key: str = ""
    base_url: str = ""
    prefix: str = ""
    priority: int = 0
    weight: int = 1
    proxy_url: str = ""  # effective: own setting, else the global `proxy-url`
    headers: Mapping[str, str] = field(default_factory=dict)  # full static upstream headers
    header_copies: tuple[tuple[str, str], ...] = ()  # (upstream header, client header) from `$Name`
    pinned_headers: frozenset[str] = frozenset()  # forwarded client headers the config sets instead
    models: tuple[ModelOffer, ...] = ()
    disabled: bool = False
    disable_cooling: bool | None = None
    request_retry: int | None = None
    scoped_errors: tuple[Any, ...] = ()  # `request-scoped-errors` rules (config `ScopedErrorRule`s)
    label: str = ""
    owned_by: str = ""
    auth_index: str = ""
    source: Any = None  # the auth file object for auth-dir credentials

    @property
    def dialect(self) -> Dialect:
        return self.executor.dialect


@runtime_checkable
class CredentialSource(Protocol):
    """An auth-dir file that can become a routable credential (credentials engineer's extension point)."""

    def to_credential(self, config: Config) -> Credential | None: ...


@cache
def builtin_models() -> dict[str, tuple[ModelOffer, ...]]:
    """The packaged per-provider model lists (`cliproxy/data/models.json`), read once."""
    raw = json.loads(resources.files("cliproxy").joinpath("data/models.json").read_text())
    out: dict[str, tuple[ModelOffer, ...]] = {}
    for provider, items in raw.items():
        if provider.startswith("_"):
            continue
        out[provider] = tuple(
            ModelOffer(
                id=item["id"],
                upstream=(item["id"],),
                display_name=item.get("display_name", item["id"]),
                context_length=item.get("context_length"),
                max_output_tokens=item.get("max_output_tokens"),
                created=int(item.get("created", 0)),
            )
            for item in items
        )
    return out


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def excluded(patterns: Sequence[str], *names: str) -> bool:
    """Spec §5.2 `excluded-models`: lower-cased patterns, `*` anywhere."""
    if not patterns:
        return False
    regexes = [_wildcard(p) for p in patterns]
    return any(rx.match(name.lower()) for rx in regexes for name in names)


def offers_from_entries(entries: Sequence[ModelEntry]) -> tuple[ModelOffer, ...]:
    """`models:` entries → offers; entries sharing an alias form one pool in config order."""
    pools: dict[str, list[ModelEntry]] = {}
    for entry in entries:
        if entry.name:
            pools.setdefault(entry.visible_id, []).append(entry)
    offers = []
    for visible, group in pools.items():
        first = group[0]
        offers.append(
            ModelOffer(
                id=visible,
                upstream=tuple(dict.fromkeys(e.name for e in group)),
                display_name=first.display_name or visible,
                context_length=first.max_context_length,
                force_mapping=any(e.force_mapping for e in group),
            )
        )
    return tuple(offers)


def filter_offers(offers: Iterable[ModelOffer], patterns: Sequence[str]) -> tuple[ModelOffer, ...]:
    if not patterns:
        return tuple(offers)
    kept = []
    for offer in offers:
        if excluded(patterns, offer.id):
            continue
        upstream = tuple(n for n in offer.upstream if not excluded(patterns, n))
        if upstream:
            kept.append(dataclasses.replace(offer, upstream=upstream))
    return tuple(kept)


def split_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Static extra headers, and `$Name` copies of client headers (dropped when the client lacks them)."""
    static: dict[str, str] = {}
    copies: list[tuple[str, str]] = []
    for name, value in headers.items():
        if value.startswith("$") and len(value) > 1:
            copies.append((name, value[1:]))
        else:
            static[name] = value
    return static, tuple(copies)


def identity_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def auth_index(seed: str) -> str:
    """Spec §7.1: first 16 hex of sha256 of the seed; the management UI keys on it."""
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def finish(cred: Credential, static_headers: Mapping[str, str]) -> Credential:
    """Precompute the full upstream header dict: content type, the kind's defaults (Anthropic needs
    `anthropic-version` even from clients of other dialects), auth, then the configured extras."""
    executor = cred.executor
    headers = {"Content-Type": "application/json"}
    headers.update(executor.default_headers)
    headers.update(executor.auth_headers(cred))
    # One spelling per header name, so a configured `Anthropic-Version` replaces the default rather
    # than going out twice; a configured header also wins over the client's forwarded one.
    spelling = {name.lower(): name for name in (*headers, *executor.forward_headers)}
    for name, value in static_headers.items():
        headers[spelling.get(name.lower(), name)] = value
    copies = tuple((spelling.get(up.lower(), up), client) for up, client in cred.header_copies)
    configured = {spelling.get(name.lower(), name) for name in static_headers} | {up for up, _ in copies}
    pinned = frozenset(name for name in executor.forward_headers if name in configured)
    # Read-only from here on: the upstream client caches the encoded block of an immutable mapping.
    frozen = MappingProxyType(headers)
    return dataclasses.replace(cred, headers=frozen, header_copies=copies, pinned_headers=pinned)


class _Ids:
    """Stable ids with `-1`, `-2`… for duplicates, in config order."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def make(self, kind: str, digest: str) -> str:
        base = f"{kind}:{digest}"
        count = self.seen.get(base, 0)
        self.seen[base] = count + 1
        return base if count == 0 else f"{base}-{count}"


def _effective_proxy(own: str, config: Config) -> str:
    return own or config.proxy_url


def synthesize(config: Config) -> list[Credential]:
    """Every credential the config's provider key lists describe (disabled ones included, flagged)."""
    ids = _Ids()
    builtin = builtin_models()
    creds: list[Credential] = []

    sections: tuple[tuple[str, str, str, str, Sequence[Any]], ...] = (
        ("gemini", "gemini-api-key", "gemini:apikey", "google", config.gemini_api_key),
        ("claude", "claude-api-key", "claude:apikey", "anthropic", config.claude_api_key),
        ("codex", "codex-api-key", "codex:apikey", "openai", config.codex_api_key),
        ("vertex", "vertex-api-key", "vertex:apikey", "google", config.vertex_api_key),
    )
    for kind, section, id_kind, owner, entries in sections:
        seen_identity: set[tuple[str, ...]] = set()
        for index, entry in enumerate(entries):
            if kind == "codex" and not entry.base_url:
                log.warning("%s[%d]: dropped (codex keys need base-url)", section, index)
                continue
            if not entry.api_key and not entry.base_url:
                continue
            static, copies = split_headers(entry.headers)
            proxy = _effective_proxy(entry.proxy_url, config)
            sorted_headers = "\0".join(f"{k}:{v}" for k, v in sorted(entry.headers.items()))
            identity: tuple[str, ...]
            if kind == "vertex":
                identity = (id_kind, entry.api_key, entry.base_url, entry.proxy_url)
            else:
                identity = (id_kind, entry.api_key, entry.base_url, entry.proxy_url, entry.prefix, sorted_headers)
            if kind == "gemini":
                if identity in seen_identity:
                    continue
                seen_identity.add(identity)
            offers = offers_from_entries(entry.models) if entry.models else builtin.get(kind, ())
            cred = Credential(
                id=ids.make(id_kind, identity_hash(*identity)),
                kind=kind,
                provider=kind,
                executor=EXECUTORS[kind],
                api_key=entry.api_key,
                base_url=entry.base_url,
                prefix=entry.prefix,
                priority=entry.priority,
                weight=1 if entry.weight is None else entry.weight,
                proxy_url=proxy,
                header_copies=copies,
                models=filter_offers(offers, entry.excluded_models),
                disabled=entry.disabled,
                disable_cooling=entry.disable_cooling,
                request_retry=entry.request_retry if entry.request_retry is None or entry.request_retry >= 0 else None,
                scoped_errors=entry.request_scoped_errors,
                label=f"{section}[{index}]",
                owned_by=owner,
                auth_index=auth_index(f"{section}:{entry.base_url}+{entry.api_key}"),
            )
            creds.append(finish(cred, static))

    for index, compat in enumerate(config.openai_compatibility):
        creds.extend(_compat_credentials(config, compat, index, ids))
    return creds


def _compat_credentials(config: Config, compat: OpenAICompatibility, index: int, ids: _Ids) -> list[Credential]:
    if not compat.base_url:
        log.warning("openai-compatibility[%d]: dropped (base-url is required)", index)
        return []
    name = compat.name
    provider = f"openai-compatible-{name.lower()}" if name else "openai-compatibility"
    id_kind = f"openai-compatibility:{name}" if name else "openai-compatibility"
    static, copies = split_headers(compat.headers)
    offers = filter_offers(offers_from_entries(compat.models), compat.excluded_models)
    entries = compat.api_key_entries or (None,)
    out = []
    for sub, key_entry in enumerate(entries):
        api_key = key_entry.api_key if key_entry else ""
        own_proxy = key_entry.proxy_url if key_entry else ""
        weight = key_entry.weight if key_entry and key_entry.weight is not None else 1
        cred = Credential(
            id=ids.make(id_kind, identity_hash(id_kind, api_key, compat.base_url, own_proxy)),
            kind="openai-compatibility",
            provider=provider,
            executor=EXECUTORS["openai-compatibility"],
            api_key=api_key,
            base_url=compat.base_url,
            prefix=compat.prefix,
            priority=compat.priority,
            weight=weight,
            proxy_url=_effective_proxy(own_proxy, config),
            header_copies=copies,
            models=offers,
            disabled=compat.disabled,
            disable_cooling=compat.disable_cooling,
            request_retry=compat.request_retry if compat.request_retry is None or compat.request_retry >= 0 else None,
            scoped_errors=compat.request_scoped_errors,
            label=f"openai-compatibility[{index}]" + (f".api-key-entries[{sub}]" if key_entry else ""),
            owned_by=name or "openai-compatibility",
            auth_index=auth_index(f"openai-compatibility:{compat.base_url}+{api_key}"),
        )
        out.append(finish(cred, static))
    return out


def from_auth_files(config: Config, auth_files: Sequence[Any]) -> list[Credential]:
    """Auth-dir credentials: every file object that implements `CredentialSource`."""
    out = []
    for item in auth_files:
        if isinstance(item, Credential):
            out.append(item)
        elif isinstance(item, CredentialSource):
            cred = item.to_credential(config)
            if cred is not None:
                out.append(cred)
    return out
