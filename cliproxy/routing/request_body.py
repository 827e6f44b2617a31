"""Building the upstream request of one attempt: the body bytes, the model in the URL, the headers.

Same dialect: the client's bytes go out untouched when nothing has to change, or with only the
top-level model swapped by a byte replace. A `model(level)` thinking suffix, `payload:` rules or an
upstream that needs the body fitted (the ChatGPT Codex backend) parse it once. Another dialect:
the body is translated through the IR. A credential's shaper (Claude cloaking) may then rewrite
body and headers, when it wants this request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cliproxy import jsonio
from cliproxy.routing.call import Call
from cliproxy.routing.credentials import Credential
from cliproxy.routing.failures import Failure
from cliproxy.routing.raw_body import raw_body
from cliproxy.routing.session_key import session_key
from cliproxy.runtime import Runtime
from cliproxy.translate import Dialect, convert
from cliproxy.translate.payload import FROM_PROTOCOL, PROTOCOL
from cliproxy.upstream.base import RAW_ACTIONS, OutgoingRequest


@dataclass(slots=True)
class UpstreamBody:
    """What one attempt sends: the body bytes and the model name for the upstream's URL; `tool_names`
    maps tool names the translation shortened back to the client's (None when none were)."""

    payload: bytes
    url_model: str
    stream: bool  # the upstream is asked for a stream (the client's wish, or an always-streaming upstream)
    tool_names: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None  # a shaper's headers; None: `upstream_headers` of the call
    content_type: str | None = None  # a body that is not JSON (a passthrough multipart form)


def replace_model(raw: bytes, body: dict[str, Any], old: str, new: str) -> bytes:
    """Swap the top-level `"model"` value: a byte replace when unambiguous, else a re-dump."""
    if raw.count(b'"model"') == 1:
        old_json, new_json = jsonio.dumps(old), jsonio.dumps(new)
        pattern = re.compile(rb'("model"\s*:\s*)' + re.escape(old_json))
        replaced, count = pattern.subn(lambda m: m.group(1) + new_json, raw, count=2)
        if count == 1:
            return replaced
    copy = dict(body)
    copy["model"] = new
    return jsonio.dumps(copy)


def build_body(runtime: Runtime, call: Call, cred: Credential, upstream_model: str) -> UpstreamBody | Failure:
    """The upstream body for `call` on `cred` under `upstream_model`; a `Failure` (client fault) when the
    body cannot be expressed in the upstream's dialect."""
    if call.action in RAW_ACTIONS:  # passthrough routes: never translated
        raw, content_type = raw_body(call, cred, upstream_model)
        return UpstreamBody(raw, upstream_model, call.stream, content_type=content_type)
    executor = cred.executor
    upstream = executor.dialect
    passthrough = upstream is call.dialect
    up_stream = call.stream or (executor.always_stream and call.action == "generate")
    url_model = upstream_model
    body: dict[str, Any] | None = None
    payload: bytes | None = None
    renamed: dict[str, str] | None = None
    if passthrough:
        if upstream_model[-1:] == ")" and "(" in upstream_model:  # thinking suffix → body fields
            body, url_model = convert.apply_thinking_suffix(jsonio.loads(call.raw), upstream, model=upstream_model)
        elif upstream_model == call.model or upstream is Dialect.GEMINI:
            payload = call.raw  # (a Gemini body carries no model: it goes into the URL)
        else:
            payload = replace_model(call.raw, call.body, call.model, upstream_model)
        if up_stream and not call.stream:  # an always-streaming upstream
            body = body if body is not None else jsonio.loads(payload or call.raw)
            body["stream"] = True
    else:
        renamed = {}
        try:
            body = convert.translate_request(
                call.body, call.dialect, upstream, model=upstream_model, stream=up_stream, renamed=renamed
            )
        except convert.TranslationError as exc:
            return Failure(400, b"", call.dialect, fault=True, message=str(exc))
        url_model = convert.split_thinking_suffix(upstream_model)[0]
    if runtime.config.payload:
        rules = runtime.payload_rules
        if rules:
            if body is None:
                body = jsonio.loads(payload or call.raw)
            body = convert.apply_payload_rules(
                body,
                rules,
                models=[url_model, call.model],
                protocol=PROTOCOL[upstream],
                from_protocol=FROM_PROTOCOL[call.dialect],
                original=call.body,
                headers=call.headers,
            )
    if executor.rewrites_body and call.action == "generate":  # e.g. the ChatGPT Codex backend
        parsed = body if body is not None else jsonio.loads(payload or call.raw)
        if executor.prepare_body(parsed):
            body = parsed
    headers: dict[str, str] | None = None
    finish = None
    shaper = cred.shaper
    if shaper is not None and shaper.wants(call.dialect, call.headers, call.body, call.action):
        body = body if body is not None else jsonio.loads(payload or call.raw)  # its own copy
        headers = dict(upstream_headers(call, cred))
        routing = runtime.config.routing
        session = session_key(call.headers, call.body, subagents=routing.session_affinity_subagents)
        url = executor.url(cred, url_model, stream=up_stream, action=call.action)
        outgoing = OutgoingRequest(body, headers, call.headers, call.body, call.action, session, url, up_stream)
        try:
            shaper.shape(outgoing)
        except ValueError as exc:
            return Failure(400, b"", call.dialect, fault=True, message=str(exc))
        finish = outgoing.finish
    if body is not None:
        payload = jsonio.dumps(body)
    assert payload is not None
    if finish is not None:
        payload = finish(payload)
    return UpstreamBody(payload, url_model, up_stream, renamed or None, headers=headers)


def upstream_headers(call: Call, cred: Credential) -> Mapping[str, str]:
    """The credential's precomputed headers plus the client headers its kind forwards and `$Name` copies."""
    executor = cred.executor
    if not executor.forward_headers and not cred.header_copies:
        return cred.headers
    headers = dict(cred.headers)
    client_headers = call.headers
    for name in executor.forward_headers:
        value = client_headers.get(name)
        if value and name not in cred.pinned_headers:  # configured headers win
            headers[name] = value
    for upstream_name, client_name in cred.header_copies:
        value = client_headers.get(client_name)
        if value:
            headers[upstream_name] = value
    return headers
