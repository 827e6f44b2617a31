"""Two opt-in changes to a committed answer: `force-mapping` and `passthrough-headers`.

- `force-mapping: true` on a model alias: the answer names the model the client asked for, not the
  upstream's, in every dialect (`model`, Claude's `message.model`, Responses' `response.model`,
  Gemini's `modelVersion`), whole or streamed, as CLIProxyAPI does. Translated answers already
  carry the client's name; passthrough ones are rewritten here, a stream event by event.
- `passthrough-headers: true`: the upstream's response headers go to the client, except those
  that describe the connection or the body the proxy writes itself, cookies, CORS, and the headers
  other gateways add about themselves; a header the proxy sets is never replaced.
Neither costs anything when off.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from cliproxy import jsonio

_MODEL_FIELD = re.compile(rb'("model(?:Version)?"\s*:\s*)"(?:[^"\\]|\\.)*"')
_HOLDERS = ("message", "response")
DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "set-cookie",
        "content-length",
        "content-encoding",
        "content-type",
        "date",
        "server",
        "x-cpa-trace-id",
    }
)
DROPPED_PREFIXES = ("access-control-", "x-litellm-", "helicone-", "x-portkey-", "cf-aig-", "x-kong-", "x-bt-")


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream response headers `passthrough-headers` passes on."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in DROPPED_HEADERS or lower.startswith(DROPPED_PREFIXES) or name in out:
            continue
        out[name] = value
    return out


def remap_body(data: bytes, model: str) -> bytes:
    """A whole answer with its model fields naming `model`."""
    try:
        parsed = jsonio.loads(data)
    except ValueError:
        return data
    if not isinstance(parsed, dict):
        return data
    changed = False
    for holder in (parsed, *(parsed.get(name) for name in _HOLDERS)):
        if isinstance(holder, dict):
            for key in ("model", "modelVersion"):
                if isinstance(holder.get(key), str):
                    holder[key] = model
                    changed = True
    return jsonio.dumps(parsed) if changed else data


def remap_events(chunk: bytes, model: str) -> bytes:
    """Complete SSE events with their model fields naming `model`."""
    name = jsonio.dumps(model)
    return _MODEL_FIELD.sub(lambda m: m.group(1) + name, chunk)


async def remapped_stream(events: AsyncIterator[bytes], model: str) -> AsyncGenerator[bytes, None]:
    """A passthrough stream with its model fields renamed; a chunk that ends inside an event waits
    for the rest of it, so a field split across two network reads is still found."""
    tail = b""
    async for chunk in events:
        data = tail + chunk
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        if cut == 0:
            tail = data
            continue
        tail = data[cut:]
        yield remap_events(data[:cut], model)
    if tail:
        yield remap_events(tail, model)
