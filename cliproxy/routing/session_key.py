"""Which conversation a request belongs to, for session affinity and Claude cloaking.

The sources, in CLIProxyAPI's order: the headers `X-Claude-Code-Session-Id`, `X-Session-ID`,
`Session-Id`, `Session_id`, `X-Session-Affinity`, `X-Client-Request-Id`; then the body's
`metadata.user_id` (the `session_id` inside Claude Code's JSON form, or after `_session_` in the
older form), `prompt_cache_key`, `conversation` (or its `id`), `conversation_id`, `session_id`;
then a hash of the system prompt and the first message, which stay the same as a conversation
grows. Only computed when something asks (affinity on, or a request being cloaked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cliproxy import jsonio

SESSION_HEADERS = (
    "X-Claude-Code-Session-Id",
    "X-Session-ID",
    "Session-Id",
    "Session_id",
    "X-Session-Affinity",
    "X-Client-Request-Id",
)
AGENT_HEADER = "X-Claude-Code-Agent-Id"  # a Claude Code sub-agent's own id, beside its parent's session
_FIRST_OF = (("messages", "system"), ("input", "instructions"), ("contents", "systemInstruction"))


def user_id_session(user_id: str) -> str:
    """The session inside a Claude Code `metadata.user_id`: JSON `{"session_id": …}`, or `…_session_<id>`."""
    if user_id.startswith("{"):
        try:
            parsed = jsonio.loads(user_id)
        except ValueError:
            return user_id
        session = parsed.get("session_id") if isinstance(parsed, dict) else None
        return session if isinstance(session, str) and session else user_id
    _, sep, tail = user_id.rpartition("_session_")
    return tail if sep and tail else user_id


def _from_body(body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return user_id_session(user_id)
    for name in ("prompt_cache_key", "conversation", "conversation_id", "session_id"):
        value = body.get(name)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value:
            return value
    for turns, system in _FIRST_OF:
        items = body.get(turns)
        if isinstance(items, list) and items:
            seed = jsonio.dumps([body.get(system), items[0]])
            return "first:" + hashlib.sha256(seed).hexdigest()[:32]
        if isinstance(items, str) and items:  # Responses `input` as one string
            return "first:" + hashlib.sha256(jsonio.dumps([body.get(system), items])).hexdigest()[:32]
    return ""


def session_key(headers: Mapping[str, str], body: Mapping[str, Any], *, subagents: bool = True) -> str:
    """The request's session key ('' when nothing identifies one).

    With `subagents` off, a Claude Code sub-agent (its own `X-Claude-Code-Agent-Id` under its
    parent's session) is a session of its own instead of following its parent.
    """
    key = ""
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value:
            key = value
            break
    if not key:
        key = _from_body(body)
    if key and not subagents:
        agent = headers.get(AGENT_HEADER)
        if agent:
            key = f"{key}/agent:{agent}"
    return key
