"""Codex / OpenAI Responses with an API key: `{base-url}/responses`, Bearer (base-url is required).

Such a key also serves `/responses/compact` and the images routes under its base-url, the upstream
WebSocket with `websockets: true`, and `/alpha/search` with `alpha-search: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from cliproxy.config.sections import CodexKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import GENERATE_ACTIONS, WEBSOCKET, Executor, UpstreamCredential, join_url, openai_path

WEBSOCKET_BETA = "responses_websockets=2026-02-06"
# Client headers Codex sends on its WebSocket that the upstream acts on, passed on when present.
WEBSOCKET_COPIED = (
    "x-codex-beta-features",
    "x-codex-turn-state",
    "x-codex-turn-metadata",
    "x-client-request-id",
    "x-responsesapi-include-timing-metrics",
    "Version",
    "Originator",
    "User-Agent",
    "session_id",
)


def websocket_headers(client: Mapping[str, str]) -> dict[str, str]:
    """The Responses WebSocket beta flag (the client's, when it names one) and Codex's own headers."""
    beta = client.get("OpenAI-Beta", "")
    out = {"OpenAI-Beta": beta if "responses_websockets=" in beta else WEBSOCKET_BETA}
    for name in WEBSOCKET_COPIED:
        value = client.get(name)
        if value:
            out[name] = value
    return out


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

    def websocket_headers(self, client: Mapping[str, str]) -> dict[str, str]:
        return websocket_headers(client)

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
