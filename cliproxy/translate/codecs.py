"""The codec of each dialect: callers pick one by `Dialect` and never need to know a wire."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from cliproxy.translate import Dialect, chat, claude, gemini, responses
from cliproxy.translate.codec import Codec

CODECS: Final[Mapping[Dialect, Codec]] = {
    Dialect.CHAT: chat.CODEC,
    Dialect.RESPONSES: responses.CODEC,
    Dialect.CLAUDE: claude.CODEC,
    Dialect.GEMINI: gemini.CODEC,
}
