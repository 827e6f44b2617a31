"""OpenAI-compatible providers: `{base-url}/chat/completions`, Bearer only when a key is set."""

from __future__ import annotations

from typing import ClassVar

from cliproxy.translate import Dialect
from cliproxy.upstream.base import Executor, UpstreamCredential, join_url


class OpenAICompatExecutor(Executor):
    kind: ClassVar[str] = "openai-compatibility"
    dialect: ClassVar[Dialect] = Dialect.CHAT

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url, "/chat/completions")

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"Authorization": "Bearer " + cred.api_key} if cred.api_key else {}
