"""The registry entry of an API-key provider: one config section of keys and the executor it uses.

A section turns its config entries into `KeyEntry`s, one per upstream credential, with every
provider rule applied (dropped entries, duplicates, the identity behind the stable id). The
routing layer turns each `KeyEntry` into a routable `Credential`; nothing there knows a
provider by name. `ApiKeySection` covers every `<name>-api-key` list; a section of another
shape (`openai-compatibility`) implements `KeySection` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from cliproxy.config.model import Config
from cliproxy.config.sections import ModelEntry, ProviderKey, ScopedErrorRule, UpstreamTimeouts
from cliproxy.upstream.base import Executor, RequestShaper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyEntry:
    """One upstream credential a config section describes, before routing builds it."""

    section: str  # YAML section, also the seed of the management `auth-index`
    index: int  # position in the section
    key_index: int | None  # position in the entry's own key list, for sections that have one
    label: str  # where it is in the config: `claude-api-key[0]`
    kind: str  # executor kind
    provider: str  # provider key in listings and usage (`openai-compatible-<name>` …)
    id_kind: str  # first part of the stable id (`claude:apikey`)
    identity: tuple[str, ...]  # what the stable id hashes: equal identities keep their cooldowns
    executor: Executor
    owned_by: str
    api_key: str
    base_url: str
    prefix: str
    priority: int
    weight: int | None
    proxy_url: str  # the entry's own; '' means the global `proxy-url`
    headers: Mapping[str, str]
    models: tuple[ModelEntry, ...]  # configured models; empty means `builtin_models`
    builtin_models: str  # key of the packaged model list ('' for none)
    excluded_models: tuple[str, ...]
    disabled: bool
    disable_cooling: bool | None
    request_retry: int | None
    scoped_errors: tuple[ScopedErrorRule, ...]
    timeouts: UpstreamTimeouts | None  # the entry's own `upstream-timeouts`
    shaper: RequestShaper | None = None  # per-request rewriting (Claude cloaking), None for most
    flags: frozenset[str] = frozenset()  # switches such as `websockets`, `alpha-search`


ENTRY_FLAGS = ("websockets", "alpha-search")
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


def entry_flags(entry: ProviderKey) -> frozenset[str]:
    """The boolean switches an entry turns on, typed (`CodexKey.websockets`) or not (`model_extra`)."""
    extra = entry.model_extra or {}
    found = set()
    for name in ENTRY_FLAGS:
        value = getattr(entry, name.replace("-", "_"), None)
        if value is None:
            value = extra.get(name)
        if value is True or (isinstance(value, str) and value.strip().lower() in TRUE_WORDS):
            found.add(name)
    return frozenset(found)


class KeySection(Protocol):
    """A config section whose entries are upstream credentials."""

    @property
    def section(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def status_toggle(self) -> str:
        """How the management API switches one credential off: `excluded-models` (a `*`) or `disabled`."""
        ...

    def entries(self, config: Config) -> Iterator[KeyEntry]: ...


@dataclass(frozen=True)
class ApiKeySection:
    """A `<name>-api-key` list, as CLIProxyAPI reads them.

    `entry` is the model that validates one item (`Config` applies it while loading). The
    flags are the per-provider rules CLIProxyAPI has, which the management API applies too.
    """

    section: str
    kind: str
    owner: str
    executor: Executor
    entry: type[ProviderKey] = ProviderKey
    needs_base_url: bool = False  # entries without base-url are dropped
    needs_api_key: bool = False  # management PUT refuses entries without api-key
    dedupe: bool = False  # entries with neither key nor base-url are dropped, duplicates too
    strict_match: bool = False  # management: an ambiguous api-key match is an error, a miss 404
    endpoint_identity: bool = False  # the stable id depends on key, base-url and proxy-url only
    status_toggle: str = "excluded-models"
    shaper: Callable[[ProviderKey, Config], RequestShaper | None] | None = None  # built per entry

    def entries(self, config: Config) -> Iterator[KeyEntry]:
        id_kind = f"{self.kind}:apikey"
        seen: set[tuple[str, ...]] = set()
        for index, entry in enumerate(config.api_key_section(self.section)):
            if self.needs_base_url and not entry.base_url:
                log.warning("%s[%d]: dropped (%s keys need base-url)", self.section, index, self.kind)
                continue
            if not entry.api_key and not entry.base_url:
                continue
            identity: tuple[str, ...] = (id_kind, entry.api_key, entry.base_url, entry.proxy_url)
            if not self.endpoint_identity:
                headers = "\0".join(f"{k}:{v}" for k, v in sorted(entry.headers.items()))
                identity = (*identity, entry.prefix, headers)
            if self.dedupe:
                if identity in seen:
                    continue
                seen.add(identity)
            yield KeyEntry(
                section=self.section,
                index=index,
                key_index=None,
                label=f"{self.section}[{index}]",
                kind=self.kind,
                provider=self.kind,
                id_kind=id_kind,
                identity=identity,
                executor=self.executor,
                owned_by=self.owner,
                api_key=entry.api_key,
                base_url=entry.base_url,
                prefix=entry.prefix,
                priority=entry.priority,
                weight=entry.weight,
                proxy_url=entry.proxy_url,
                headers=entry.headers,
                models=entry.models,
                builtin_models=self.kind,
                excluded_models=entry.excluded_models,
                disabled=entry.disabled,
                disable_cooling=entry.disable_cooling,
                request_retry=entry.request_retry,
                scoped_errors=entry.request_scoped_errors,
                timeouts=entry.upstream_timeouts,
                shaper=self.shaper(entry, config) if self.shaper is not None else None,
                flags=entry_flags(entry),
            )
