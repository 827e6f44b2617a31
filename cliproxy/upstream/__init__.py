"""Upstream executors: one module per upstream kind, one shared session pool (`base.Sessions`)."""

from __future__ import annotations

from cliproxy.upstream.base import Executor
from cliproxy.upstream.claude import ClaudeExecutor
from cliproxy.upstream.codex import CodexExecutor
from cliproxy.upstream.gemini import GeminiExecutor
from cliproxy.upstream.openai_compat import OpenAICompatExecutor
from cliproxy.upstream.vertex import VertexExecutor

# Executors of the config-key credential kinds. OAuth kinds (claude/codex OAuth, vertex service
# accounts) bring their own `Executor` subclass on the credential they build.
EXECUTORS: dict[str, Executor] = {
    e.kind: e for e in (OpenAICompatExecutor(), ClaudeExecutor(), CodexExecutor(), GeminiExecutor(), VertexExecutor())
}
