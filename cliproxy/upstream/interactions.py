"""Gemini's Interactions API with an API key: `POST {base-url}/v1beta/interactions`, `x-goog-api-key`.

As CLIProxyAPI does, these credentials serve only `/v1beta/interactions`, whose requests pass
through as the client sent them (the model swapped); the client's `Api-Revision` goes along,
else the revision CLIProxyAPI sends. They offer Gemini's built-in models unless `models:` says.
"""

from __future__ import annotations

from typing import ClassVar

from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import Executor, UpstreamCredential, join_url
from cliproxy.upstream.gemini import DEFAULT_BASE

API_REVISION = "2026-05-20"


class InteractionsExecutor(Executor):
    kind: ClassVar[str] = "gemini-interactions"
    dialect: ClassVar[Dialect] = Dialect.GEMINI  # its errors are Google's
    actions: ClassVar[frozenset[str]] = frozenset({"interactions"})
    forward_headers: ClassVar[tuple[str, ...]] = ("Api-Revision", "User-Agent")
    default_headers: ClassVar[dict[str, str]] = {"Api-Revision": API_REVISION}

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url or DEFAULT_BASE, "/v1beta/interactions")

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"x-goog-api-key": cred.api_key} if cred.api_key else {}


PROVIDER = ApiKeySection(
    section="interactions-api-key",
    kind="gemini-interactions",
    owner="google",
    executor=InteractionsExecutor(),
)
