"""Google AI Studio (Gemini API) with an API key: model and method in the URL, `x-goog-api-key`."""

from __future__ import annotations

from typing import ClassVar

from cliproxy.config.sections import GeminiKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import Executor, UpstreamCredential, join_url

DEFAULT_BASE = "https://generativelanguage.googleapis.com"


def gemini_method(stream: bool, action: str) -> str:
    """The `:method` suffix (with `?alt=sse` for streams, the only framing we relay)."""
    if action == "count_tokens":
        return ":countTokens"
    return ":streamGenerateContent?alt=sse" if stream else ":generateContent"


class GeminiExecutor(Executor):
    kind: ClassVar[str] = "gemini"
    dialect: ClassVar[Dialect] = Dialect.GEMINI
    forward_headers: ClassVar[tuple[str, ...]] = ("User-Agent", "x-goog-api-client")

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url or DEFAULT_BASE, "/v1beta/models/" + model + gemini_method(stream, action))

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"x-goog-api-key": cred.api_key} if cred.api_key else {}


# As CLIProxyAPI does: gemini entries without key and base-url are dropped, duplicates too.
PROVIDER = ApiKeySection(
    section="gemini-api-key",
    kind="gemini",
    owner="google",
    executor=GeminiExecutor(),
    entry=GeminiKey,
    dedupe=True,
    strict_match=True,
)
