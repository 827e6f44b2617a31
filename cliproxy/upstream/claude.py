"""Anthropic Messages with an API key: `x-api-key` on api.anthropic.com, Bearer on any other base-url.

That split is CLIProxyAPI's: gateways in front of Anthropic expect a Bearer token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from cliproxy.config.sections import ClaudeKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import Executor, UpstreamCredential, host_of, join_url
from cliproxy.upstream.claude_cloak import shaper_for_key

DEFAULT_BASE = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"


def messages_url(base: str, action: str) -> str:
    path = "/v1/messages/count_tokens?beta=true" if action == "count_tokens" else "/v1/messages?beta=true"
    return join_url(base, path)


class ClaudeExecutor(Executor):
    kind: ClassVar[str] = "claude"
    dialect: ClassVar[Dialect] = Dialect.CLAUDE
    forward_headers: ClassVar[tuple[str, ...]] = ("anthropic-version", "anthropic-beta", "User-Agent")
    default_headers: ClassVar[Mapping[str, str]] = {"anthropic-version": DEFAULT_VERSION}

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        path = "/v1/messages/count_tokens?beta=true" if action == "count_tokens" else "/v1/messages?beta=true"
        return join_url(cred.base_url or DEFAULT_BASE, path)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        if not cred.api_key:
            return {}
        base = cred.base_url or DEFAULT_BASE
        if host_of(base) == "api.anthropic.com":
            return {"x-api-key": cred.api_key}
        return {"Authorization": "Bearer " + cred.api_key}


PROVIDER = ApiKeySection(
    section="claude-api-key",
    kind="claude",
    owner="anthropic",
    executor=ClaudeExecutor(),
    entry=ClaudeKey,
    shaper=shaper_for_key,  # cloaking, for entries with a `cloak:` block or the Claude Code profile
)
