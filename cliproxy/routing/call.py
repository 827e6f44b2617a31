"""What routing takes and gives back: one parsed client request (`Call`) and its committed answer (`Outcome`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cliproxy.clientkeys import ClientIdentity
from cliproxy.translate import Dialect


@dataclass(slots=True)
class Call:
    """One client request, parsed once by its dialect's handler."""

    dialect: Dialect  # client dialect
    model: str  # as the client asked (may carry prefix/, alias, "(suffix)")
    body: dict[str, Any]  # parsed client body
    raw: bytes  # original bytes (forwarded untouched in passthrough when nothing changed)
    stream: bool
    client: ClientIdentity
    headers: Mapping[str, str]  # client request headers (forwarding and `$Header` copies)
    endpoint: str  # e.g. "/v1/chat/completions", for usage records
    action: str = "generate"  # or "count_tokens"
    request_id: str = ""  # the front door's X-Request-Id, so usage records match the logs
    client_ip: str = ""  # the socket peer, for usage records


@dataclass(slots=True)
class Outcome:
    """The committed result: the first upstream byte (or the whole body) is known."""

    status: int
    headers: dict[str, str]
    content_type: str
    body: bytes | None  # non-stream: the whole client-dialect body
    events: AsyncIterator[bytes] | None  # stream: client-dialect SSE bytes, as they arrive
    credential_id: str
    upstream_model: str
    _close: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    upstream_headers: Mapping[str, str] | None = None  # `passthrough-headers`: the upstream's, filtered

    async def aclose(self) -> None:
        """Release the upstream (and record usage) if the stream was not read to its end."""
        if self._close is not None:
            close, self._close = self._close, None
            await close()

    def wrap_events(self, events: AsyncIterator[bytes], close: Callable[[], Awaitable[None]]) -> None:
        """Replace the stream by a reshaped one; `close` must also close the original."""
        self.events = events
        self._close = close

    @property
    def closer(self) -> Callable[[], Awaitable[None]] | None:
        return self._close
