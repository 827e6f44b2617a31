"""Per-provider OAuth knowledge: endpoints, request shapes, and the credential files they produce.

`ProviderSettings.from_env()` collects every URL and client id; each can be overridden by an
environment variable (listed on each settings class) so tests and self-hosted gateways can point
the complete flows somewhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cliproxy.credentials.providers.claude import ClaudeSettings
from cliproxy.credentials.providers.codex import CodexSettings
from cliproxy.credentials.providers.vertex import VertexSettings


@dataclass(frozen=True)
class ProviderSettings:
    claude: ClaudeSettings = field(default_factory=ClaudeSettings)
    codex: CodexSettings = field(default_factory=CodexSettings)
    vertex: VertexSettings = field(default_factory=VertexSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProviderSettings:
        env = os.environ if env is None else env
        return cls(
            claude=ClaudeSettings.from_env(env),
            codex=CodexSettings.from_env(env),
            vertex=VertexSettings.from_env(env),
        )
