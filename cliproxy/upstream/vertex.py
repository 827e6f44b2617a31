"""Vertex AI with an API key (express mode): publisher model URL, `x-goog-api-key`."""

from __future__ import annotations

from typing import ClassVar

from cliproxy.config.sections import VertexKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import Executor, UpstreamCredential, join_url
from cliproxy.upstream.gemini import gemini_method

DEFAULT_BASE = "https://aiplatform.googleapis.com"


class VertexExecutor(Executor):
    kind: ClassVar[str] = "vertex"
    dialect: ClassVar[Dialect] = Dialect.GEMINI
    forward_headers: ClassVar[tuple[str, ...]] = ("User-Agent", "x-goog-api-client")

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        path = "/v1/publishers/google/models/" + model + gemini_method(stream, action)
        return join_url(cred.base_url or DEFAULT_BASE, path)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"x-goog-api-key": cred.api_key} if cred.api_key else {}


PROVIDER = ApiKeySection(
    section="vertex-api-key",
    kind="vertex",
    owner="google",
    executor=VertexExecutor(),
    entry=VertexKey,
    needs_api_key=True,
    endpoint_identity=True,
)
