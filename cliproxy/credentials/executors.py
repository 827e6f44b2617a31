"""Auth-dir credentials as routable upstream credentials, with executors whose tokens change.

`AuthFileCredential.to_credential(config)` (the routing layer's `CredentialSource` hook) lands
here: it builds one routing `Credential` per file with its own executor instance. Tokens come
from the app's `CredentialService` (refresh scheduler, single-flight refresh, vertex minting),
which `bind_executors` attaches to every executor of a snapshot when it goes live: at install
and from the runtime holder's swap listener, so no request ever sees an unbound executor and no
module-level state is needed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from cliproxy.config.model import Config
from cliproxy.credentials.oauth import OAuthError
from cliproxy.credentials.providers import ProviderSettings, codex, vertex
from cliproxy.credentials.store import AuthFileCredential, ModelAlias
from cliproxy.routing.credentials import (
    Credential,
    ModelOffer,
    builtin_models,
    filter_offers,
    finish,
    split_headers,
)
from cliproxy.translate import Dialect
from cliproxy.upstream.base import Executor, UpstreamCredential, join_url
from cliproxy.upstream.claude import DEFAULT_VERSION, ClaudeExecutor
from cliproxy.upstream.gemini import gemini_method

if TYPE_CHECKING:
    from cliproxy.credentials.service import CredentialService
    from cliproxy.runtime import Runtime

log = logging.getLogger(__name__)

CLAUDE_OAUTH_BETA = "oauth-2025-04-20"
CODEX_ORIGINATOR = "codex_cli_rs"
OWNERS = {"claude": "anthropic", "codex": "openai", "vertex": "google"}


class NotBound(OAuthError):
    """An auth-file executor used outside a running server (no credentials service)."""


class AuthFileExecutor(Executor):
    """Shared part: the file behind the credential, and the service that supplies its tokens."""

    dynamic_auth: ClassVar[bool] = True

    def __init__(self, source: AuthFileCredential, settings: ProviderSettings) -> None:
        self.source = source
        self.settings = settings
        self.service: CredentialService | None = None

    def bind(self, service: CredentialService) -> None:
        self.service = service

    async def token(self, *, force_refresh: bool) -> str:
        if self.service is None:
            raise NotBound(f"{self.source.id}: the credentials service is not running")
        token = await self.service.access_token(self.source, force_refresh=force_refresh)
        if not token:
            raise OAuthError(f"{self.source.id}: no access token; log in again")
        return token

    def can_refresh(self, cred: UpstreamCredential) -> bool:
        return self.source.type == "vertex" or bool(self.source.refresh_token)


class ClaudeOAuthExecutor(AuthFileExecutor, ClaudeExecutor):
    """Anthropic Messages with a Claude subscription: Bearer token plus the OAuth beta flag."""

    kind: ClassVar[str] = "claude"

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        path = "/v1/messages/count_tokens?beta=true" if action == "count_tokens" else "/v1/messages?beta=true"
        return join_url(self.settings.claude.api_url, path)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"anthropic-version": DEFAULT_VERSION, "anthropic-beta": CLAUDE_OAUTH_BETA}

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        return {"Authorization": "Bearer " + await self.token(force_refresh=force_refresh)}

    def combine_headers(self, headers: Mapping[str, str], auth: Mapping[str, str]) -> dict[str, str]:
        """Keep the client's `anthropic-beta` flags and add the OAuth one (the API needs both)."""
        out = {**headers, **auth}
        flags = [f.strip() for f in out.get("anthropic-beta", "").split(",") if f.strip()]
        if CLAUDE_OAUTH_BETA not in flags:
            flags.append(CLAUDE_OAUTH_BETA)
        out["anthropic-beta"] = ",".join(flags)
        return out


class CodexOAuthExecutor(AuthFileExecutor):
    """The ChatGPT Codex backend: Responses over SSE only, Bearer plus the account-id headers."""

    kind: ClassVar[str] = "codex"
    dialect: ClassVar[Dialect] = Dialect.RESPONSES
    always_stream: ClassVar[bool] = True
    rewrites_body: ClassVar[bool] = True
    forward_headers: ClassVar[tuple[str, ...]] = (
        "OpenAI-Beta",
        "User-Agent",
        "Originator",
        "Session_id",
        "Session-Id",
        "Version",
    )

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return self.settings.codex.api_url

    def prepare_body(self, body: dict[str, Any]) -> bool:
        return codex.fit_backend_body(body)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        headers = {"Originator": CODEX_ORIGINATOR, "Accept": "text/event-stream"}
        if self.source.account_id:
            headers["Chatgpt-Account-Id"] = self.source.account_id
        return headers

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        headers = {"Authorization": "Bearer " + await self.token(force_refresh=force_refresh)}
        if self.service is not None:  # a refresh may have brought the account id
            account = self.service.refresher.current(self.source).account_id
            if account:
                headers["Chatgpt-Account-Id"] = account
        return headers


class VertexServiceAccountExecutor(AuthFileExecutor):
    """Vertex AI with a service account: regional publisher-model URL, minted Bearer token."""

    kind: ClassVar[str] = "vertex"
    dialect: ClassVar[Dialect] = Dialect.GEMINI
    forward_headers: ClassVar[tuple[str, ...]] = ("User-Agent", "x-goog-api-client")

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        src = self.source
        base = vertex.base_url(self.settings.vertex, src.location)
        path = f"/v1/projects/{src.project_id}/locations/{src.location}/publishers/google/models/{model}"
        return base + path + gemini_method(stream, action)

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        return {"Authorization": "Bearer " + await self.token(force_refresh=force_refresh)}


EXECUTOR_TYPES: dict[str, type[AuthFileExecutor]] = {
    "claude": ClaudeOAuthExecutor,
    "codex": CodexOAuthExecutor,
    "vertex": VertexServiceAccountExecutor,
}


def _aliases(cred: AuthFileCredential, config: Config) -> list[ModelAlias]:
    """Global `oauth-model-alias[type]` plus the file's own; the file wins for the same alias."""
    merged: dict[str, ModelAlias] = {}
    for entry in config.oauth_model_alias.get(cred.type, ()):
        if entry.name and entry.alias and entry.name.lower() != entry.alias.lower():
            merged[entry.alias.lower()] = ModelAlias(entry.name, entry.alias, entry.fork, entry.force_mapping)
    for alias in cred.model_aliases:
        merged[alias.alias.lower()] = alias
    return list(merged.values())


def offers_for(cred: AuthFileCredential, config: Config) -> tuple[ModelOffer, ...]:
    """The provider's built-in models, renamed by aliases (spec §5.4), minus excluded patterns."""
    aliases = _aliases(cred, config)
    by_name: dict[str, list[ModelAlias]] = {}
    for alias in aliases:
        by_name.setdefault(alias.name.lower(), []).append(alias)
    offers: list[ModelOffer] = []
    known: set[str] = set()
    for offer in builtin_models().get(cred.type, ()):
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
    excluded = (*cred.excluded_models, *(p.lower() for p in config.oauth_excluded_models.get(cred.type, ())))
    return filter_offers(offers, excluded)


def build_credential(cred: AuthFileCredential, config: Config) -> Credential | None:
    """The routing credential of one auth file (None for a type without an executor)."""
    executor_type = EXECUTOR_TYPES.get(cred.type)
    if executor_type is None:
        return None
    executor = executor_type(cred, ProviderSettings.from_env())
    static, copies = split_headers(dict(cred.headers))
    routed = Credential(
        id=cred.id,
        kind=cred.type,
        provider=cred.type,
        executor=executor,
        base_url=_display_base(cred, executor.settings),
        prefix=cred.prefix,
        priority=cred.priority,
        weight=1 if cred.weight is None else cred.weight,
        proxy_url=cred.proxy_url or config.proxy_url,
        header_copies=copies,
        models=offers_for(cred, config),
        disabled=cred.disabled,
        disable_cooling=cred.disable_cooling,
        request_retry=cred.request_retry if cred.request_retry is None or cred.request_retry >= 0 else None,
        scoped_errors=cred.request_scoped_errors + config.oauth_request_scoped_errors.get(cred.type, ()),
        label=cred.label,
        owned_by=OWNERS.get(cred.type, cred.type),
        auth_index=cred.auth_index,
        source=cred,
    )
    return finish(routed, static)


def _display_base(cred: AuthFileCredential, settings: ProviderSettings) -> str:
    if cred.type == "claude":
        return settings.claude.api_url
    if cred.type == "codex":
        return settings.codex.api_url
    return vertex.base_url(settings.vertex, cred.location)


def bind_executors(runtime: Runtime, service: CredentialService) -> int:
    """Attach `service` to every auth-file executor of `runtime`; returns how many."""
    count = 0
    for cred in runtime.catalog.credentials:
        executor = getattr(cred, "executor", None)
        if isinstance(executor, AuthFileExecutor):
            executor.bind(service)
            count += 1
    return count
