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


class Executor:
    """One upstream kind. Subclasses set the class attributes and `url`; OAuth kinds add `fresh_auth`."""

    kind: ClassVar[str] = ""
    dialect: ClassVar[Dialect] = Dialect.CHAT
    always_stream: ClassVar[bool] = False  # upstream only answers with SSE (ChatGPT Codex backend)
    dynamic_auth: ClassVar[bool] = False  # True when `fresh_auth` must be awaited per attempt
    forward_headers: ClassVar[tuple[str, ...]] = ()  # client headers worth passing on, in this spelling
    default_headers: ClassVar[Mapping[str, str]] = {}  # sent when the client did not send the header
    rewrites_body: ClassVar[bool] = False  # True when `prepare_body` must see every generate request

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
