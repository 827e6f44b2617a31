"""The executor base of auth-file credentials: an upstream kind whose token comes from a service.

Each provider module subclasses `AuthFileExecutor` with its URL and headers. The token is
asked of a `TokenService` (the running server's `CredentialService`: refresh scheduler,
single-flight refresh, minted service-account tokens), which is bound to every executor of a
runtime snapshot before that snapshot serves a request.
"""

from __future__ import annotations

from typing import ClassVar, Generic, Protocol, TypeVar

from cliproxy.credentials.files import AuthFileCredential
from cliproxy.credentials.oauth import OAuthError
from cliproxy.upstream.base import Executor, UpstreamCredential

S = TypeVar("S")


class TokenService(Protocol):
    """Where auth-file executors get their tokens."""

    async def access_token(self, cred: AuthFileCredential, *, force_refresh: bool = False) -> str: ...

    def current(self, cred: AuthFileCredential) -> AuthFileCredential:
        """`cred`, or the newer credential a refresh produced from it."""
        ...


class NotBound(OAuthError):
    """An auth-file executor used outside a running server (no token service)."""


class AuthFileExecutor(Executor, Generic[S]):
    """Shared part: the file behind the credential, its provider's settings, and the token service."""

    dynamic_auth: ClassVar[bool] = True

    def __init__(self, source: AuthFileCredential, settings: S) -> None:
        self.source = source
        self.settings = settings
        self.tokens: TokenService | None = None

    def bind(self, tokens: TokenService) -> None:
        self.tokens = tokens

    async def token(self, *, force_refresh: bool) -> str:
        if self.tokens is None:
            raise NotBound(f"{self.source.id}: the credentials service is not running")
        token = await self.tokens.access_token(self.source, force_refresh=force_refresh)
        if not token:
            raise OAuthError(f"{self.source.id}: no access token; log in again")
        return token

    def current(self) -> AuthFileCredential:
        """The file as the last refresh left it (the snapshot's copy until then)."""
        return self.source if self.tokens is None else self.tokens.current(self.source)

    def can_refresh(self, cred: UpstreamCredential) -> bool:
        return bool(self.source.refresh_token)

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        return {"Authorization": "Bearer " + await self.token(force_refresh=force_refresh)}
