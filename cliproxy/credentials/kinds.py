"""The registry entry of an auth-file provider: everything cliproxy needs to know about one `type`.

One `AuthFileKind` per credential file `type` names how its files are validated, the executor
that sends requests with it, how its tokens are kept fresh (refreshed with a refresh token, or
minted from a service-account key) and how a user logs in (browser, device code, key import).
Code outside the provider's module asks the entry and never compares type names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import aiohttp

from cliproxy.config.model import Config
from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import AuthFileCredential, CredentialFileError, format_time, text_field
from cliproxy.credentials.oauth import PKCE, DeviceCode, TokenSet
from cliproxy.upstream.base import RequestShaper

S = TypeVar("S")


def require_tokens(meta: dict[str, Any]) -> None:
    """The check of every OAuth login file: an access or a refresh token must be there."""
    if not (text_field(meta, "access_token") or text_field(meta, "refresh_token")):
        raise CredentialFileError(f"{text_field(meta, 'type')}: access_token or refresh_token is required")


def apply_tokens(metadata: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    """The file contents after a refresh: new token fields, every other field untouched."""
    meta = dict(metadata)
    meta["access_token"] = tokens.access_token
    if tokens.refresh_token:
        meta["refresh_token"] = tokens.refresh_token
    if tokens.id_token:
        meta["id_token"] = tokens.id_token
    if tokens.expires_at is not None:
        meta["expired"] = format_time(tokens.expires_at)
    meta["last_refresh"] = format_time(tokens.received_at)
    return meta


def no_facts(_meta: Mapping[str, Any]) -> Mapping[str, str]:
    return {}


def no_listing(_cred: AuthFileCredential) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class CodeLogin(Generic[S]):
    """A browser login: authorization code with PKCE, redirected to a fixed localhost callback.

    `web_name` is the provider's name in the management API, as CLIProxyAPI spells it:
    `/<web_name>-auth-url`, the landing page `/<web_name>/callback` and the hand-off file
    `.oauth-<web_name>-<state>.oauth`. `aliases` are the names `oauth-callback` accepts.
    """

    web_name: str
    aliases: tuple[str, ...]
    callback: Callable[[S], tuple[int, str]]  # settings -> (port, path) of the redirect URI
    authorize_url: Callable[[S, PKCE, str, str], str]  # (settings, pkce, state, redirect_uri)
    exchange: Callable[[aiohttp.ClientSession, S, str, str, str, str], Awaitable[TokenSet]]
    # (session, settings, code, state, verifier, redirect_uri)


@dataclass(frozen=True)
class DeviceLogin(Generic[S]):
    """A headless login: show a code, poll until the user approved it elsewhere.

    With `web_name`, the management API offers it as `/<web_name>-auth-url` (a provider without a
    browser login), its pending logins' states starting with `state_prefix`, as CLIProxyAPI names them.
    """

    start: Callable[[aiohttp.ClientSession, S], Awaitable[DeviceCode]]
    poll: Callable[[aiohttp.ClientSession, S, DeviceCode, float], Awaitable[TokenSet]]  # (…, timeout)
    timeout_seconds: float
    web_name: str = ""
    state_prefix: str = ""


@dataclass(frozen=True)
class AuthFileKind(Generic[S]):
    """One credential-file `type` and everything that depends on it.

    `settings` reads the provider's endpoints from the environment (every URL can be pointed
    elsewhere, for tests and self-hosted gateways). Exactly one of `refresh` and `mint` says how
    tokens stay valid; a kind with neither serves the token in the file until it expires.
    """

    type: str
    owner: str  # `owned_by` in model listings
    settings: Callable[[Mapping[str, str]], S]
    executor: Callable[[AuthFileCredential, S], AuthFileExecutor[S]]
    base_url: Callable[[AuthFileCredential, S], str]  # shown in listings
    credential_filename: Callable[[Mapping[str, Any]], str]
    check: Callable[[dict[str, Any]], None]
    facts: Callable[[Mapping[str, Any]], Mapping[str, str]] = no_facts
    account_type: str = "oauth"  # "service_account" for keys that mint their own tokens
    subscription: bool = False  # a login to a personal plan: live tests spend its quota
    refresh: Callable[[aiohttp.ClientSession, S, Mapping[str, Any], str], Awaitable[TokenSet]] | None = None
    # (session, settings, the file's contents, proxy_url): the refresh token, and whatever else of the
    # file a provider's refresh needs (a stored token endpoint, a device id)
    refresh_lead: timedelta | None = None  # how long before expiry the scheduler refreshes
    merge_tokens: Callable[[Mapping[str, Any], TokenSet], dict[str, Any]] = apply_tokens
    mint: Callable[[aiohttp.ClientSession, S, AuthFileCredential], Awaitable[TokenSet]] | None = None
    credential_json: Callable[[TokenSet], dict[str, Any]] | None = None  # what a login writes
    code_login: CodeLogin[S] | None = None
    device_login: DeviceLogin[S] | None = None
    import_key: Callable[[Mapping[str, Any], Mapping[str, str]], dict[str, Any]] | None = None
    # (uploaded key, options such as location/prefix/label) -> file contents; raises OAuthError
    listing: Callable[[AuthFileCredential], Mapping[str, Any]] = no_listing  # extra `/auth-files` fields
    # Per-request rewriting of this file's requests (Claude cloaking), built once per snapshot.
    shaper: Callable[[AuthFileCredential, Config], RequestShaper | None] | None = None
