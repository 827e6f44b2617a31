"""What every upstream executor shares: the credential shape it reads and the executor interface.

An executor knows one upstream kind: its wire dialect, its URLs and how it authenticates. It knows
nothing about clients or translation. Static auth headers are computed once per credential when the
snapshot is built; executors whose tokens change (OAuth, service accounts) override `fresh_auth`,
which the dispatcher awaits per attempt, and `can_refresh`, which enables the "401 → refresh once
and retry the same credential" path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from cliproxy.translate import Dialect
from cliproxy.upstream.clients import Sessions, Timeouts, UpstreamResponse

# What a `Call` asks of an upstream (`Call.action`). Every executor serves the two generate actions;
# the others are passthrough routes served by the kinds that declare them in `Executor.actions`.
GENERATE_ACTIONS = frozenset({"generate", "count_tokens"})
# `/responses/compact`, `/alpha/search`, `/images/generations`, `/images/edits`, `/v1beta/interactions`:
# the client's body goes upstream as it is (model swapped), the answer comes back as it is.
RAW_ACTIONS = frozenset({"compact", "search", "images_generations", "images_edits", "interactions"})
WEBSOCKET = "websocket"  # the upstream's own Responses WebSocket (a capability, not a `Call.action`)
# Actions a credential serves only when its config entry or file switches them on.
FLAGGED_ACTIONS = {WEBSOCKET: "websockets", "search": "alpha-search"}
# Where the OpenAI-shaped APIs serve each passthrough action, under their API base (`…/v1`).
OPENAI_ACTION_PATHS = {
    "compact": "/responses/compact",
    "search": "/alpha/search",
    "images_generations": "/images/generations",
    "images_edits": "/images/edits",
}


WEBSOCKET_DROPPED = frozenset({"stream", "stream_options", "background"})


def openai_path(action: str, generate: str) -> str:
    """The path of `action` under an OpenAI-shaped API base; `generate` for the generate actions."""
    return OPENAI_ACTION_PATHS.get(action, generate)


class UpstreamCredential(Protocol):
    """The fields of a credential an executor may read (`routing.credentials.Credential` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def source(self) -> Any: ...
    @property
    def flags(self) -> frozenset[str]: ...


@dataclass(slots=True)
class Outgoing:
    """One upstream request of an executor that sends its own (`Executor.transport`)."""

    url: str  # what `Executor.url` gave
    model: str  # the upstream model name
    stream: bool
    action: str
    payload: bytes
    headers: Mapping[str, str]
    timeouts: Timeouts
    proxy_url: str


class Executor:
    """One upstream kind. Subclasses set the class attributes and `url`; OAuth kinds add `fresh_auth`."""

    kind: ClassVar[str] = ""
    dialect: ClassVar[Dialect] = Dialect.CHAT
    always_stream: ClassVar[bool] = False  # upstream only answers with SSE (ChatGPT Codex backend)
    dynamic_auth: ClassVar[bool] = False  # True when `fresh_auth` must be awaited per attempt
    forward_headers: ClassVar[tuple[str, ...]] = ()  # client headers worth passing on, in this spelling
    default_headers: ClassVar[Mapping[str, str]] = {}  # sent when the client did not send the header
    rewrites_body: ClassVar[bool] = False  # True when `prepare_body` must see every generate request
    actions: ClassVar[frozenset[str]] = GENERATE_ACTIONS  # what it can serve (some only when flagged)
    transport: ClassVar[bool] = False  # True when `send` delivers requests itself (envelopes, relays)
    synthesizes_warmup: ClassVar[bool] = False  # its WebSocket answers a warm-up with `response.created` only

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        raise NotImplementedError

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        """Headers that authenticate this credential, computed once per snapshot."""
        return {}

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        """Per-attempt auth headers (token minting or refresh). `force_refresh` after an upstream 401."""
        return {}

    def can_refresh(self, cred: UpstreamCredential) -> bool:
        """Whether a 401 from this credential is worth one refresh and a retry on the same credential."""
        return False

    def combine_headers(self, headers: Mapping[str, str], auth: Mapping[str, str]) -> dict[str, str]:
        """Merge `fresh_auth` headers into the request's (a kind may append to a header instead)."""
        return {**headers, **auth}

    def prepare_body(self, body: dict[str, Any]) -> bool:
        """Fit a request body to this upstream's quirks, in place (`rewrites_body` kinds only).

        Returns True when anything changed, so an untouched passthrough body keeps its bytes.
        """
        return False

    def served_actions(self, flags: frozenset[str]) -> frozenset[str]:
        """The actions one credential serves: `actions`, minus those its config did not switch on."""
        return frozenset(a for a in self.actions if a not in FLAGGED_ACTIONS or FLAGGED_ACTIONS[a] in flags)

    def fit_action_body(self, action: str, body: dict[str, Any]) -> bool:
        """Fit the body of a passthrough action (`RAW_ACTIONS`) to this upstream, in place; True when changed."""
        return False

    def upstream_status(self, status: int, body: bytes) -> int:
        """The status an error answer stands for (an upstream that says 403 for an expired token: 401)."""
        return status

    def websocket_url(self, cred: UpstreamCredential) -> str:
        """The upstream's Responses WebSocket (`http(s)` here; the client switches it to `ws(s)`)."""
        raise NotImplementedError

    def websocket_frame(self, body: dict[str, Any], *, chained: bool) -> dict[str, Any]:
        """The `response.create` frame of one request on the upstream's WebSocket (which always
        streams); `chained` when it continues a response of the same upstream socket."""
        frame = {k: v for k, v in body.items() if k not in WEBSOCKET_DROPPED}
        frame["type"] = "response.create"
        return frame

    def websocket_headers(self, client: Mapping[str, str]) -> dict[str, str]:
        """Headers of the upstream WebSocket's handshake beyond the credential's own (client headers
        worth passing on, the API's beta flag)."""
        return {}

    async def send(self, cred: UpstreamCredential, out: Outgoing, sessions: Sessions) -> UpstreamResponse:
        """Deliver one request (`transport` kinds): wrap it, pick hosts, or relay it elsewhere.

        Raises what the upstream clients raise (`aiohttp` client errors, `UpstreamTimeout`)."""
        raise NotImplementedError


@dataclass(slots=True)
class OutgoingRequest:
    """An upstream request a `RequestShaper` rewrites before it is sent (body and headers in place)."""

    body: dict[str, Any]  # the upstream body, the shaper's own copy
    headers: dict[str, str]  # the upstream headers, auth of a static key included
    client_headers: Mapping[str, str]  # as the client sent them
    client_body: Mapping[str, Any]  # as the client sent it (parsed; read only)
    action: str  # "generate" or "count_tokens"
    session: str  # the request's session key ('' when nothing identifies one)
    url: str  # where it goes (some details depend on the host)
    stream: bool  # the upstream is asked for a stream
    finish: Callable[[bytes], bytes] | None = None  # set by the shaper: runs on the serialised body


class RequestShaper(Protocol):
    """Per-credential rewriting of requests, decided per request (Claude's cloaking is one).

    Built once per snapshot for the credentials that need one; `wants` is asked first, with what
    the client sent, so a request that needs nothing keeps its bytes and costs no parse.
    """

    def wants(
        self, client_dialect: Dialect, client_headers: Mapping[str, str], client_body: Mapping[str, Any], action: str
    ) -> bool:
        """Whether this request must be rewritten."""
        ...

    def shape(self, request: OutgoingRequest) -> None:
        """Rewrite it; a `ValueError` is a request the upstream would refuse (the client's fault)."""
        ...


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""
