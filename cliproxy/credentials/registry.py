"""The provider registry: one line per provider kind, each pointing at the module that knows it.

A kind is a config section of API keys (`upstream/<name>.py`, an `ApiKeySection`) or a
credential-file `type` (`credentials/providers/<name>.py`, an `AuthFileKind`). Adding a
provider means writing its module and adding its `PROVIDER` below; `docs/providers.md` walks
through both. Everything else (config validation, credential synthesis, the auth-dir loader,
refresh, logins, the management API) asks the registry and never tests a provider's name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, cast

from cliproxy.credentials.kinds import AuthFileKind
from cliproxy.credentials.providers import antigravity as antigravity_oauth
from cliproxy.credentials.providers import claude as claude_oauth
from cliproxy.credentials.providers import codex as codex_oauth
from cliproxy.credentials.providers import kimi as kimi_oauth
from cliproxy.credentials.providers import vertex as vertex_service_account
from cliproxy.credentials.providers import xai as xai_oauth
from cliproxy.upstream import claude, codex, gemini, interactions, openai_compat, vertex, xai
from cliproxy.upstream.api_keys import KeySection

S = TypeVar("S")


@dataclass(frozen=True)
class ProviderRegistry:
    """Every provider kind cliproxy serves: API-key sections, then credential-file types."""

    key_sections: tuple[KeySection, ...]
    auth_files: tuple[AuthFileKind[Any], ...]
    _by_type: Mapping[str, AuthFileKind[Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type = {kind.type: kind for kind in self.auth_files}
        if len(by_type) != len(self.auth_files):
            raise ValueError("two auth-file providers share a type")
        if len({s.section for s in self.key_sections}) != len(self.key_sections):
            raise ValueError("two API-key providers share a config section")
        object.__setattr__(self, "_by_type", MappingProxyType(by_type))

    @property
    def file_rules(self) -> Mapping[str, AuthFileKind[Any]]:
        """Credential-file type → its entry (what the auth-dir loader validates files with)."""
        return self._by_type

    def auth_file(self, cred_type: str) -> AuthFileKind[Any] | None:
        return self._by_type.get(cred_type)

    def with_providers(self, *providers: KeySection | AuthFileKind[Any]) -> ProviderRegistry:
        """This registry plus `providers` (each an API-key section or an auth-file kind)."""
        sections = [p for p in providers if not isinstance(p, AuthFileKind)]
        kinds = [p for p in providers if isinstance(p, AuthFileKind)]
        return ProviderRegistry((*self.key_sections, *sections), (*self.auth_files, *kinds))


BUILTIN = ProviderRegistry(
    key_sections=(
        gemini.PROVIDER,
        claude.PROVIDER,
        codex.PROVIDER,
        vertex.PROVIDER,
        openai_compat.PROVIDER,
        xai.PROVIDER,
        interactions.PROVIDER,
    ),
    auth_files=(
        claude_oauth.PROVIDER,
        codex_oauth.PROVIDER,
        vertex_service_account.PROVIDER,
        xai_oauth.PROVIDER,
        kimi_oauth.PROVIDER,
        antigravity_oauth.PROVIDER,
    ),
)


class ProviderSettings:
    """The endpoints of every auth-file provider's flows, read from the environment once.

    Each provider's `settings(env)` reads its own variables (`CLIPROXY_<TYPE>_TOKEN_URL` …);
    `of(kind)` hands a provider its settings. Attribute access by type name (`settings.claude`)
    is for tests and interactive use.
    """

    __slots__ = ("_env", "_values")

    def __init__(self, values: Mapping[str, object], env: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._env = dict(env)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, registry: ProviderRegistry = BUILTIN) -> ProviderSettings:
        env = dict(os.environ if env is None else env)
        return cls({kind.type: kind.settings(env) for kind in registry.auth_files}, env)

    def of(self, kind: AuthFileKind[S]) -> S:
        value = self._values.get(kind.type)
        if value is None:  # a kind this object was not built with: read its settings now
            value = self._values[kind.type] = kind.settings(self._env)
        return cast(S, value)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)
