"""Codex / OpenAI Responses with an API key: `{base-url}/responses`, Bearer (base-url is required).

Such a key also serves `/responses/compact` and the images routes under its base-url, the upstream
WebSocket with `websockets: true`, and `/alpha/search` with `alpha-search: true`.
"""

from __future__ import annotations

from typing import ClassVar

from cliproxy.config.sections import CodexKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import GENERATE_ACTIONS, WEBSOCKET, Executor, UpstreamCredential, join_url, openai_path


class CodexExecutor(Executor):
    kind: ClassVar[str] = "codex"
    dialect: ClassVar[Dialect] = Dialect.RESPONSES
    forward_headers: ClassVar[tuple[str, ...]] = ("OpenAI-Beta", "User-Agent", "Originator", "Session_id", "Session-Id")
    actions: ClassVar[frozenset[str]] = GENERATE_ACTIONS | {
        "compact",
        "search",
        "images_generations",
        "images_edits",
        WEBSOCKET,
    }

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url, openai_path(action, "/responses"))

    def websocket_url(self, cred: UpstreamCredential) -> str:
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
