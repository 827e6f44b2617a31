"""Routable upstream credentials, built from the config's key sections and from auth-dir files.

Which sections and file types exist, and what each provider's rules are, is the provider
registry's business: a key section yields `KeyEntry`s, an auth-file kind an executor. This
module turns both into immutable `Credential`s with stable ids, so the routing state keyed by
that id (cooldowns, cursors) survives reloads that leave the identity fields alone. Everything a
request needs from a credential is precomputed here: the upstream header dict (content type,
auth, custom headers), the `$Header` copies, the effective proxy, the models it offers.
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
from typing import Any

from cliproxy.config.model import Config
from cliproxy.config.sections import ModelEntry, UpstreamTimeouts
from cliproxy.credentials.files import AuthFileCredential, ModelAlias
from cliproxy.credentials.registry import BUILTIN, ProviderRegistry, ProviderSettings
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import KeyEntry
from cliproxy.upstream.base import GENERATE_ACTIONS, Executor, RequestShaper
from cliproxy.upstream.http1 import Timeouts

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
    kind: str  # executor kind (an API-key section's `kind`, or an auth-file `type`)
    provider: str  # provider key in listings and usage (`openai-compatible-<name>` for compat providers)
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
    source: AuthFileCredential | None = None  # the file behind an auth-dir credential
    timeouts: Timeouts | None = None  # the entry's own `upstream-timeouts`; None: the top-level ones
    shaper: RequestShaper | None = None  # rewrites some requests (Claude cloaking); None for most
    flags: frozenset[str] = frozenset()  # switches of its entry or file: `websockets`, `alpha-search`
    actions: frozenset[str] = GENERATE_ACTIONS  # what it serves (`Executor.served_actions`)

    @property
    def dialect(self) -> Dialect:
        return self.executor.dialect

    @property
    def name(self) -> str:
        """How operators name it: the config path (`claude-api-key[0]`), or the auth file's name."""
        if self.source is not None and self.source.name:
            return self.source.name
        return self.label or self.id


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
    """`excluded-models`, as CLIProxyAPI matches them: lower-cased patterns, `*` anywhere."""
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
    """First 16 hex of sha256 of the seed, as CLIProxyAPI computes it; the management UI keys on it."""
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
    actions = executor.served_actions(cred.flags)
    return dataclasses.replace(cred, headers=frozen, header_copies=copies, pinned_headers=pinned, actions=actions)


class _Ids:
    """Stable ids with `-1`, `-2`… for duplicates, in config order."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def make(self, kind: str, digest: str) -> str:
        base = f"{kind}:{digest}"
        count = self.seen.get(base, 0)
        self.seen[base] = count + 1
        return base if count == 0 else f"{base}-{count}"


def synthesize(config: Config, registry: ProviderRegistry = BUILTIN) -> list[Credential]:
    """Every credential the config's key sections describe (disabled ones included, flagged)."""
    ids = _Ids()
    builtin = builtin_models()
    creds: list[Credential] = []
    for section in registry.key_sections:
        for entry in section.entries(config):
            creds.append(_key_credential(entry, config, ids, builtin))
    return creds


def _key_credential(
    entry: KeyEntry, config: Config, ids: _Ids, builtin: Mapping[str, tuple[ModelOffer, ...]]
) -> Credential:
    static, copies = split_headers(entry.headers)
    offers = offers_from_entries(entry.models) if entry.models else builtin.get(entry.builtin_models, ())
    cred = Credential(
        id=ids.make(entry.id_kind, identity_hash(*entry.identity)),
        kind=entry.kind,
        provider=entry.provider,
        executor=entry.executor,
        api_key=entry.api_key,
        base_url=entry.base_url,
        prefix=entry.prefix,
        priority=entry.priority,
        weight=1 if entry.weight is None else entry.weight,
        proxy_url=entry.proxy_url or config.proxy_url,
        header_copies=copies,
        models=filter_offers(offers, entry.excluded_models),
        disabled=entry.disabled,
        disable_cooling=entry.disable_cooling,
        request_retry=_retry(entry.request_retry),
        scoped_errors=entry.scoped_errors,
        timeouts=resolve_timeouts(config, entry.timeouts) if entry.timeouts is not None else None,
        flags=entry.flags,
        label=entry.label,
        owned_by=entry.owned_by,
        auth_index=auth_index(f"{entry.section}:{entry.base_url}+{entry.api_key}"),
        shaper=entry.shaper,
    )
    return finish(cred, static)


def resolve_timeouts(config: Config, own: UpstreamTimeouts | None = None) -> Timeouts:
    """`upstream-timeouts` of an entry over the top-level block over the defaults, field by field."""
    default = Timeouts()
    blocks = (own, config.upstream_timeouts) if own is not None else (config.upstream_timeouts,)

    def pick(name: str, fallback: float) -> float:
        for block in blocks:
            value = getattr(block, name)
            if value is not None:
                return float(value)
        return fallback

    return Timeouts(
        connect=pick("connect_seconds", default.connect),
        first_byte=pick("first_byte_seconds", default.first_byte),
        idle=pick("idle_seconds", default.idle),
    )


def _retry(value: int | None) -> int | None:
    """A negative `request-retry` means "inherit the global value", as absent does."""
    return value if value is None or value >= 0 else None


# --------------------------------------------------------------------------- auth-dir files


def _aliases(channel: str, own: Sequence[ModelAlias], config: Config) -> list[ModelAlias]:
    """Global `oauth-model-alias[channel]` plus the file's own; the file wins for the same alias."""
    merged: dict[str, ModelAlias] = {}
    for entry in config.oauth_model_alias.get(channel, ()):
        if entry.name and entry.alias and entry.name.lower() != entry.alias.lower():
            merged[entry.alias.lower()] = ModelAlias(entry.name, entry.alias, entry.fork, entry.force_mapping)
    for alias in own:
        merged[alias.alias.lower()] = alias
    return list(merged.values())


def offers_for(cred: AuthFileCredential, config: Config) -> tuple[ModelOffer, ...]:
    """The type's built-in models, renamed by aliases as CLIProxyAPI does, minus excluded patterns."""
    return channel_offers(cred.type, config, cred.model_aliases, cred.excluded_models)


def channel_offers(
    channel: str, config: Config, own_aliases: Sequence[ModelAlias] = (), own_excluded: Sequence[str] = ()
) -> tuple[ModelOffer, ...]:
    """The built-in models of an OAuth channel (a file type, or a runtime provider such as `aistudio`),
    renamed by `oauth-model-alias[channel]` and its own aliases, minus the excluded patterns."""
    aliases = _aliases(channel, own_aliases, config)
    by_name: dict[str, list[ModelAlias]] = {}
    for alias in aliases:
        by_name.setdefault(alias.name.lower(), []).append(alias)
    offers: list[ModelOffer] = []
    known: set[str] = set()
    for offer in builtin_models().get(channel, ()):
        known.add(offer.id.lower())
        renamed = by_name.get(offer.id.lower(), [])
        if not renamed or any(a.fork for a in renamed):
            offers.append(offer)
        offers.extend(
            dataclasses.replace(offer, id=a.alias, display_name=a.alias, force_mapping=a.force_mapping) for a in renamed
        )
    for alias in aliases:  # an alias may name a model the built-in list does not know yet
        if alias.name.lower() not in known:
            offers.append(ModelOffer(id=alias.alias, upstream=(alias.name,), display_name=alias.alias,
                                     force_mapping=alias.force_mapping))  # fmt: skip
            if alias.fork:
                offers.append(ModelOffer(id=alias.name, upstream=(alias.name,), display_name=alias.name))
    excluded = (*own_excluded, *(p.lower() for p in config.oauth_excluded_models.get(channel, ())))
    return filter_offers(offers, excluded)


def runtime_credential(cred_id: str, provider: str, owner: str, executor: Executor, config: Config) -> Credential:
    """A credential that lives as long as a connection (the AI Studio relay): the provider's built-in
    models under `oauth-model-alias[provider]`, the global proxy and the channel's error rules."""
    routed = Credential(
        id=cred_id,
        kind=provider,
        provider=provider,
        executor=executor,
        proxy_url=config.proxy_url,
        models=channel_offers(provider, config),
        scoped_errors=config.oauth_request_scoped_errors.get(provider, ()),
        label=cred_id,
        owned_by=owner,
        auth_index=auth_index(f"{provider}:{cred_id}"),
    )
    return finish(routed, {})


def build_credential(
    cred: AuthFileCredential,
    config: Config,
    registry: ProviderRegistry = BUILTIN,
    settings: ProviderSettings | None = None,
) -> Credential | None:
    """The routing credential of one auth file (None for a type no provider serves)."""
    kind = registry.auth_file(cred.type)
    if kind is None:
        return None
    own = (settings if settings is not None else ProviderSettings.from_env(registry=registry)).of(kind)
    executor = kind.executor(cred, own)
    static, copies = split_headers(dict(cred.headers))
    routed = Credential(
        id=cred.id,
        kind=cred.type,
        provider=cred.type,
        executor=executor,
        base_url=kind.base_url(cred, own),
        prefix=cred.prefix,
        priority=cred.priority,
        weight=1 if cred.weight is None else cred.weight,
        proxy_url=cred.proxy_url or config.proxy_url,
        header_copies=copies,
        models=offers_for(cred, config),
        disabled=cred.disabled,
        disable_cooling=cred.disable_cooling,
        request_retry=_retry(cred.request_retry),
        scoped_errors=cred.request_scoped_errors + config.oauth_request_scoped_errors.get(cred.type, ()),
        flags=frozenset({"websockets"}) if cred.websockets else frozenset(),
        label=cred.label,
        owned_by=kind.owner,
        auth_index=cred.auth_index,
        source=cred,
        shaper=kind.shaper(cred, config) if kind.shaper is not None else None,
    )
    return finish(routed, static)


def from_auth_files(
    config: Config, auth_files: Sequence[Any], registry: ProviderRegistry = BUILTIN
) -> list[Credential]:
    """Auth-dir credentials: every credential file a provider of `registry` serves."""
    settings = ProviderSettings.from_env(registry=registry)  # read once per snapshot, not per file
    out = []
    for item in auth_files:
        if isinstance(item, Credential):
            out.append(item)
        elif isinstance(item, AuthFileCredential):
            cred = build_credential(item, config, registry, settings)
            if cred is not None:
                out.append(cred)
    return out
