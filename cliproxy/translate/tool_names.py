"""Tool names a target accepts: long or oddly spelled names are shortened on the way up and restored
on the way back.

OpenAI (chat and Responses) takes `[a-zA-Z0-9_-]{1,64}`, Claude `[a-zA-Z0-9_-]{1,128}`, Gemini a
letter or underscore first, then letters, digits and `_ . : -`, at most 64. MCP tools from Claude Code
(`mcp__server__tool`) routinely pass 64 characters. A name the target refuses becomes a short name
that depends only on the original (its readable start plus a hash), so the same tool gets the same
short name in the tool list, `tool_choice`, the call history and every later turn, and two names never
share one. The map from short to original names turns the upstream's calls back into the names the
client declared.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cliproxy.translate.ir import Request, ToolCallPart, ToolResultPart


@dataclass(frozen=True, slots=True)
class NameRule:
    """What names a dialect accepts: `valid` must match the whole name."""

    valid: re.Pattern[str]
    invalid_char: re.Pattern[str]
    limit: int
    letter_first: bool = False

    def fit(self, name: str) -> str:
        """`name` if the target takes it, else its short form: readable start, `_`, 8 hex of its hash."""
        if self.valid.fullmatch(name):
            return name
        clean = self.invalid_char.sub("_", name)
        if self.letter_first and not (clean[:1].isalpha() or clean[:1] == "_"):
            clean = "_" + clean
        keep = self.limit - 9
        if len(clean) > keep and clean.startswith("mcp__") and "__" in clean[5:]:
            clean = "mcp__" + clean.rsplit("__", 1)[1]  # keep the tool's own name, not its server's
        return clean[:keep] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]


OPENAI_NAMES = NameRule(re.compile(r"[a-zA-Z0-9_-]{1,64}"), re.compile(r"[^a-zA-Z0-9_-]"), 64)
CLAUDE_NAMES = NameRule(re.compile(r"[a-zA-Z0-9_-]{1,128}"), re.compile(r"[^a-zA-Z0-9_-]"), 128)
GEMINI_NAMES = NameRule(
    re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}"), re.compile(r"[^a-zA-Z0-9_.:-]"), 64, letter_first=True
)


def fit_tool_names(req: Request, rule: NameRule) -> dict[str, str]:
    """Rename, in place, every tool name `rule` refuses (tools, tool_choice, calls and results in the
    history); returns {short name: original name} for the ones that changed (empty: nothing did)."""
    renamed: dict[str, str] = {}
    fine: set[str] = set()  # names already checked: calls in the history mostly repeat the tools' names
    valid = rule.valid.fullmatch
    for tool in req.tools:
        if valid(tool.name):
            fine.add(tool.name)
        else:
            short = rule.fit(tool.name)
            renamed[short] = tool.name
            tool.name = short
    choice = req.tool_choice
    if choice is not None and choice.name and choice.name not in fine and not valid(choice.name):
        choice.name = rule.fit(choice.name)
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart | ToolResultPart) and part.name and part.name not in fine:
                if valid(part.name):
                    fine.add(part.name)
                else:
                    part.name = rule.fit(part.name)
    return renamed
