"""xAI (Grok) with an API key: the Responses API at `{base-url}/responses`, always streamed.

The wire rules live here and are shared with xAI logins (`credentials/providers/xai.py`): xAI
refuses a few Responses fields (`previous_response_id`, `stop`, …) that clients send, a compact
call takes a smaller body, and a 403 whose code says `bad-credentials` is really an expired token
(a 401, so the usual refresh-once-and-retry runs). As in CLIProxyAPI, an entry without
`base-url` is dropped (with a warning).
"""

from __future__ import annotations

from typing import Any, ClassVar

from cliproxy import jsonio
from cliproxy.config.sections import XaiKey
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import (
    GENERATE_ACTIONS,
    WEBSOCKET,
    WEBSOCKET_DROPPED,
    Executor,
    UpstreamCredential,
    join_url,
    openai_path,
)

API_URL = "https://api.x.ai/v1"
# Responses fields xAI refuses; the client's other fields pass as they are.
UNSUPPORTED = ("previous_response_id", "prompt_cache_retention", "safety_identifier", "stream_options", "stop")
# What a compact call leaves out: it is not a generation (no sampling, no tools).
NOT_FOR_COMPACT = ("stream", "tools", "tool_choice", "max_output_tokens", "temperature", "top_p", "top_k", "stop")
ACTIONS = GENERATE_ACTIONS | {"compact", "images_generations", "images_edits", WEBSOCKET}


def fit_body(body: dict[str, Any]) -> bool:
    """A Responses body as xAI takes it, in place; True when anything changed."""
    changed = False
    for key in UNSUPPORTED:
        if key in body:
            del body[key]
            changed = True
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:  # a `custom` tool is a function for xAI
            if isinstance(tool, dict) and tool.get("type") == "custom":
                tool["type"] = "function"
                tool.setdefault("parameters", {"type": "object", "properties": {"input": {"type": "string"}}})
                tool.pop("format", None)
                changed = True
    if body.get("stream") is not True:
        body["stream"] = True
        changed = True
    return changed


def fit_compact_body(body: dict[str, Any]) -> bool:
    """The body of `/responses/compact`: no stream, tools or sampling knobs, no compaction triggers."""
    changed = False
    for key in NOT_FOR_COMPACT:
        if key in body:
            del body[key]
            changed = True
    items = body.get("input")
    if isinstance(items, list):
        kept = [i for i in items if not (isinstance(i, dict) and i.get("type") == "compaction_trigger")]
        if len(kept) != len(items):
            body["input"] = kept
            changed = True
    return changed


def websocket_frame(body: dict[str, Any], *, chained: bool) -> dict[str, Any]:
    """xAI's `response.create` frame: stored (its socket chains by id), no instructions on a chained
    turn (the upstream has them), none of the HTTP-only fields."""
    frame = {k: v for k, v in body.items() if k not in WEBSOCKET_DROPPED}
    frame["type"] = "response.create"
    frame["store"] = True
    if chained:
        frame.pop("instructions", None)
    return frame


def bad_credentials(status: int, body: bytes) -> bool:
    """xAI's 403 for a token it cannot validate: an expired login, worth a refresh."""
    if status != 403 or not body:
        return False
    lowered = body.lower()
    if b"access token could not be validated" in lowered:
        return True
    if b"bad-credentials" not in lowered:
        return False
    try:
        parsed = jsonio.loads(body)
    except ValueError:
        return False
    codes = [parsed.get("code")] if isinstance(parsed, dict) else []
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        codes.append(error.get("code"))
    return any(isinstance(c, str) and "bad-credentials" in c for c in codes)


class XaiExecutor(Executor):
    """xAI's Responses API with an API key: Bearer, SSE only."""

    kind: ClassVar[str] = "xai"
    dialect: ClassVar[Dialect] = Dialect.RESPONSES
    always_stream: ClassVar[bool] = True
    rewrites_body: ClassVar[bool] = True
    actions: ClassVar[frozenset[str]] = ACTIONS
    synthesizes_warmup: ClassVar[bool] = True

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url or API_URL, action_path(action))

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"Authorization": "Bearer " + cred.api_key} if cred.api_key else {}

    def prepare_body(self, body: dict[str, Any]) -> bool:
        return fit_body(body)

    def fit_action_body(self, action: str, body: dict[str, Any]) -> bool:
        return fit_compact_body(body) if action == "compact" else False

    def upstream_status(self, status: int, body: bytes) -> int:
        return 401 if bad_credentials(status, body) else status

    def websocket_frame(self, body: dict[str, Any], *, chained: bool) -> dict[str, Any]:
        return websocket_frame(body, chained=chained)

    def websocket_url(self, cred: UpstreamCredential) -> str:
        return join_url(cred.base_url or API_URL, "/responses")


def action_path(action: str) -> str:
    """The path under the API base of each action xAI serves."""
    return openai_path(action, "/responses")


PROVIDER = ApiKeySection(
    section="xai-api-key",
    kind="xai",
    owner="xai",
    executor=XaiExecutor(),
    entry=XaiKey,
    needs_base_url=True,
)
