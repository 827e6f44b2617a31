"""The body side of Claude cloaking: Claude Code's system-prompt opening, the caller's own system
text moved where a Claude subscription accepts it, the date reminder, sensitive words and the
prompt-cache breakpoint limit. Every function edits a Messages body (a dict) in place.

As CLIProxyAPI does: the new `system` is exactly Claude Code's billing block and identity line;
the caller's system text becomes `<system-reminder>` blocks in the first user message for the older
models, or `system` turns after the opening user turn for every other model (strict mode drops it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
BILLING_PREFIX = "x-anthropic-billing-header:"
EPHEMERAL = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4  # Anthropic refuses more `cache_control` blocks than this
_FINGERPRINT_SALT = "59cf53e54c78"
ZERO_WIDTH_SPACE = "\u200b"
# Models that take the caller's system text as reminders in the first user turn (CLIProxyAPI's list).
LEGACY_MODELS = frozenset(
    {
        "claude-3-5-haiku-20241022",
        "claude-3-5-haiku-latest",
        "claude-3-7-sonnet-20250219",
        "claude-3-7-sonnet-latest",
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "claude-opus-4",
        "claude-opus-4-20250514",
        "claude-opus-4-1",
        "claude-opus-4-1-20250805",
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "claude-opus-4-6",
        "claude-opus-4-7",
        "claude-sonnet-4",
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-6",
    }
)
DATE_REMINDER = (
    "<system-reminder>\n"
    "As you answer the user's questions, you can use the following context:\n"
    "# currentDate\n"
    "Today's date is {date}.\n"
    "\n"
    "      IMPORTANT: this context may or may not be relevant to your tasks. You should not respond to this "
    "context unless it is highly relevant to your task.\n"
    "</system-reminder>\n"
    "\n"
)


def is_legacy(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower() in LEGACY_MODELS


def _user_text(body: dict[str, Any]) -> str:
    """The last non-empty text among the user turns (the billing fingerprint hashes it)."""
    for message in reversed(body.get("messages") or ()):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str) and content:
            return content
        if isinstance(content, list):
            texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
            if texts and texts[-1]:
                return str(texts[-1])
    return ""


def billing_block(body: dict[str, Any], version: str, *, signed: bool = False) -> dict[str, Any]:
    """Claude Code's billing header block: its version and a 3-hex fingerprint of the user's text;
    `signed`: with the placeholder of the body signature (`claude_signing`)."""
    text = _user_text(body)

    def at(index: int) -> str:
        return text[index] if index < len(text) else "0"

    digest = hashlib.sha256((_FINGERPRINT_SALT + at(4) + at(7) + at(20) + version).encode()).hexdigest()[:3]
    cch = " cch=00000;" if signed else ""
    return {"type": "text", "text": f"{BILLING_PREFIX} cc_version={version}.{digest}; cc_entrypoint=cli;{cch}"}


def system_texts(body: dict[str, Any], *, strict: bool) -> list[str]:
    """The caller's system text worth keeping (not blank, not Claude Code's own opening).

    Outside strict mode a block that is not text is refused, as CLIProxyAPI and the API do.
    """
    system = body.get("system")
    if isinstance(system, str):
        blocks: list[Any] = [{"type": "text", "text": system}]
    elif isinstance(system, list):
        blocks = system
    else:
        blocks = []
    texts = []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            if strict:
                continue
            raise ValueError(f"system.{index}.type: Input should be 'text'")
        text = block.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        if text.lstrip().startswith(BILLING_PREFIX) or text.strip() == IDENTITY:
            continue
        texts.append(text)
    return texts


def rebuild_mid_system(body: dict[str, Any]) -> None:
    """`rebuild-mid-system-message`: the caller's `system` turns join the top-level system prompt."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        return
    system = body.get("system")
    blocks: list[Any] = [{"type": "text", "text": system}] if isinstance(system, str) else list(system or ())
    kept = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "system":
            content = message.get("content")
            if isinstance(content, str):
                blocks.append({"type": "text", "text": content})
            elif isinstance(content, list):
                blocks.extend(b for b in content if isinstance(b, dict) and b.get("type") == "text")
        else:
            kept.append(message)
    body["system"], body["messages"] = blocks, kept


def _first_user(messages: list[Any]) -> int | None:
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return index
    return None


def _blocks(message: dict[str, Any]) -> list[Any]:
    """The message's content as a list of blocks (a string becomes one text block)."""
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
        message["content"] = content
    elif not isinstance(content, list):
        content = []
        message["content"] = content
    return content


def _after_tool_results(blocks: list[Any]) -> int:
    index = 0
    while index < len(blocks) and isinstance(blocks[index], dict) and blocks[index].get("type") == "tool_result":
        index += 1
    return index


def place_system_texts(body: dict[str, Any], texts: list[str], model: str) -> bool:
    """Put the caller's system text where a cloaked request carries it; True when system turns were used."""
    messages = body.get("messages")
    if not texts or not isinstance(messages, list):
        return False
    first = _first_user(messages)
    if first is None:
        return False
    if is_legacy(model):
        blocks = _blocks(messages[first])
        present = {b.get("text") for b in blocks if isinstance(b, dict)}
        reminders = []
        for text in texts:
            closing = "" if text.endswith("\n") else "\n"
            reminder = f"<system-reminder>\n{text}{closing}</system-reminder>"
            if reminder not in present:
                reminders.append({"type": "text", "text": reminder})
        at = _after_tool_results(blocks)
        blocks[at:at] = reminders
        return False
    end = first
    while end + 1 < len(messages) and isinstance(messages[end + 1], dict) and messages[end + 1].get("role") == "user":
        end += 1
    turns = [
        {"role": "system", "content": [{"type": "text", "text": text, "cache_control": dict(EPHEMERAL)}]}
        for text in texts
    ]
    if messages[end + 1 : end + 1 + len(turns)] != turns:
        messages[end + 1 : end + 1] = turns
    return True


def add_date_reminder(body: dict[str, Any], date: str) -> None:
    """Claude Code's currentDate reminder opens the first user turn, whose first own text is cached."""
    messages = body.get("messages")
    first = _first_user(messages) if isinstance(messages, list) else None
    if first is None:
        return
    assert isinstance(messages, list)
    blocks = [
        b
        for b in _blocks(messages[first])
        if not (isinstance(b, dict) and str(b.get("text", "")).startswith("<system-reminder>\nAs you answer"))
    ]
    for block in blocks:
        text = block.get("text") if isinstance(block, dict) and block.get("type") == "text" else None
        if isinstance(text, str) and not (
            text.startswith("<system-reminder>") and text.rstrip().endswith("</system-reminder>")
        ):
            block.setdefault("cache_control", dict(EPHEMERAL))
            break
    at = _after_tool_results(blocks)
    blocks.insert(at, {"type": "text", "text": DATE_REMINDER.format(date=date)})
    messages[first]["content"] = blocks


def obfuscate(body: dict[str, Any], words: tuple[str, ...]) -> None:
    """Each sensitive word (case-insensitive, longest first) gets a zero-width space after its first
    letter, in the system prompt and the messages' text; tool input and results are left alone."""
    usable = sorted({w.strip() for w in words if len(w.strip()) >= 2 and ZERO_WIDTH_SPACE not in w}, key=len)
    if not usable:
        return
    pattern = re.compile("|".join(re.escape(w) for w in reversed(usable)), re.IGNORECASE)

    def hide(text: str) -> str:
        return pattern.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:], text)

    def texts(holder: dict[str, Any], key: str) -> None:
        value = holder.get(key)
        if isinstance(value, str):
            holder[key] = hide(value)
        elif isinstance(value, list):
            for block in value:
                if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                    block["text"] = hide(block["text"])

    texts(body, "system")
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            texts(message, "content")


def _marked(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every block with a `cache_control`, as (where, block), in the order the API reads them."""
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and "cache_control" in tool:
            yield "tools", tool
    system = body.get("system")
    for block in system if isinstance(system, list) else ():
        if isinstance(block, dict) and "cache_control" in block:
            yield "system", block
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and "cache_control" in block:
                yield "messages", block


def limit_breakpoints(body: dict[str, Any]) -> None:
    """At most four cache breakpoints: drop system ones first (keeping the last), then tools, then the
    earliest message ones, as CLIProxyAPI does."""
    marked = list(_marked(body))
    excess = len(marked) - MAX_BREAKPOINTS
    if excess <= 0:
        return
    system = [b for where, b in marked if where == "system"][:-1]
    order = system + [b for where, b in marked if where == "tools"] + [b for where, b in marked if where == "messages"]
    for block in order[:excess]:
        del block["cache_control"]
