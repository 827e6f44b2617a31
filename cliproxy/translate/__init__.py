"""The four wire dialects and the translation between them (hub IR, one codec per dialect)."""

from __future__ import annotations

from enum import StrEnum


class Dialect(StrEnum):
    """A wire format spoken by a client route or by an upstream kind."""

    CHAT = "chat"  # OpenAI Chat Completions
    RESPONSES = "responses"  # OpenAI Responses (also Codex)
    CLAUDE = "claude"  # Anthropic Messages
    GEMINI = "gemini"  # Google generateContent
