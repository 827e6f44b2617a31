"""Codex / OpenAI Responses with an API key: `{base-url}/responses`, Bearer (base-url is required)."""

from __future__ import annotations

from typing import ClassVar

from cliproxy.config.sections import CodexKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import Executor, UpstreamCredential, join_url


class CodexExecutor(Executor):
    kind: ClassVar[str] = "codex"
    dialect: ClassVar[Dialect] = Dialect.RESPONSES
    forward_headers: ClassVar[tuple[str, ...]] = ("OpenAI-Beta", "User-Agent", "Originator", "Session_id", "Session-Id")

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url, "/responses")

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"Authorization": "Bearer " + cred.api_key} if cred.api_key else {}


PROVIDER = ApiKeySection(
    section="codex-api-key",
    kind="codex",
    owner="openai",
    executor=CodexExecutor(),
    entry=CodexKey,
    needs_base_url=True,
)
