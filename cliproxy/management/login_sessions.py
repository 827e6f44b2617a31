"""The management panel's upstream logins in progress (browser and device-code), and their mirror.

A login's task (waiting for the browser's hand-off, or polling the provider for a device code's
approval) runs in the process that started it; `LoginSessions` keeps its status there. In a
cluster the panel's next call (`get-auth-status?state=`, `DELETE oauth-session?state=`) may land
on another process, so with a `LoginMirror` (shared state) every change of a status is copied to
Redis, a process that does not own a state answers from that copy, and a cancel is sent to the
owner, which stops its task. The copy lives as long as the session does here (`SESSION_TTL_SECONDS`
while pending, `COMPLETED_KEEP_SECONDS` once finished) and holds no verifier or code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiohttp import web

from cliproxy.credentials.oauth import OAuthError

SESSION_TTL_SECONDS = 30 * 60
COMPLETED_KEEP_SECONDS = 60
CALLBACK_WAIT_SECONDS = 5 * 60
POLL_SECONDS = 0.5
CANCELLED = "oauth flow was cancelled"


@dataclass(frozen=True, slots=True)
class LoginStatus:
    """What any process may answer about a login: no verifier, no code."""

    state: str
    provider: str
    status: str  # pending | ok | error | cancelled
    error: str = ""
    file_name: str = ""


class MirrorUnavailable(Exception):
    """The shared copy of the logins cannot be read or changed right now (Redis is down)."""


class LoginMirror(Protocol):
    async def put(self, status: LoginStatus, ttl_seconds: float) -> None:
        """Copy `status` for every process (best effort: a failure is logged, the owner still knows)."""
        ...

    async def get(self, state: str) -> LoginStatus | None:
        """The copy of `state` (None: unknown or expired); raises `MirrorUnavailable`."""
        ...

    async def cancel(self, state: str) -> None:
        """Ask the process that owns `state` to cancel it; raises `MirrorUnavailable`."""
        ...

    def on_cancel(self, handler: Callable[[str], None]) -> None:
        """Call `handler(state)` when any process asks for a cancel."""
        ...


@dataclass
class LoginSession:
    state: str
    provider: str  # the credential type
    verifier: str
    redirect_uri: str
    created: float = field(default_factory=time.monotonic)
    status: Literal["pending", "ok", "error", "cancelled"] = "pending"
    error: str = ""
    finished: float = 0.0
    file_name: str = ""
    forwarder_port: int | None = None


def is_cancelled(session: LoginSession) -> bool:
    """(A function so the type checker does not carry an earlier narrowing across awaits.)"""
    return session.status == "cancelled"


class LoginSessions:
    """Pending web-UI logins and the callback forwarders serving them (one app's state)."""

    def __init__(self, mirror: LoginMirror | None = None) -> None:
        self.sessions: dict[str, LoginSession] = {}
        self.forwarders: dict[int, web.AppRunner] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.poll_seconds = POLL_SECONDS
        self.wait_seconds = CALLBACK_WAIT_SECONDS
        self.mirror = mirror
        if mirror is not None:
            mirror.on_cancel(self.cancel_here)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def add(self, session: LoginSession) -> None:
        self.purge()
        self.sessions[session.state] = session
        self._mirror(session)

    def _mirror(self, session: LoginSession) -> None:
        if self.mirror is None:
            return
        ttl = SESSION_TTL_SECONDS if session.status == "pending" else COMPLETED_KEEP_SECONDS
        copy = LoginStatus(session.state, session.provider, session.status, session.error, session.file_name)
        self.spawn(self.mirror.put(copy, ttl), "oauth-login-mirror")

    def purge(self) -> None:
        now = time.monotonic()
        for state, s in list(self.sessions.items()):
            if now - s.created > SESSION_TTL_SECONDS or (s.finished and now - s.finished > COMPLETED_KEEP_SECONDS):
                del self.sessions[state]

    def get(self, state: str) -> LoginSession | None:
        self.purge()
        return self.sessions.get(state)

    async def status(self, state: str) -> LoginStatus | LoginSession | None:
        """This process's session of `state`, else the cluster's copy; raises `MirrorUnavailable`."""
        session = self.get(state)
        if session is not None or self.mirror is None or not state:
            return session
        return await self.mirror.get(state)

    def finish(self, session: LoginSession, status: Literal["ok", "error", "cancelled"], error: str = "") -> None:
        session.status, session.error, session.finished = status, error, time.monotonic()
        self._mirror(session)

    async def cancel(self, state: str) -> bool:
        """Cancel a pending login here, or ask its owner to; False when `state` is unknown."""
        session = self.get(state)
        if session is not None:
            if session.status == "pending":
                self.finish(session, "cancelled", CANCELLED)
                await self.stop_forwarder(session.forwarder_port)
            return True
        found = await self.status(state)
        if found is not None and found.status == "pending" and self.mirror is not None:
            await self.mirror.cancel(state)
        return found is not None

    def cancel_here(self, state: str) -> None:
        """Another process asked to cancel `state`: stop it when this process owns it."""
        session = self.sessions.get(state)
        if session is not None and session.status == "pending":
            self.finish(session, "cancelled", CANCELLED)
            self.spawn(self.stop_forwarder(session.forwarder_port), "oauth-forwarder-stop")

    async def start_forwarder(self, port: int, target: str) -> None:
        """Listen on 0.0.0.0:`port` and 302 every request to `target` with its query kept."""
        if port in self.forwarders:
            return

        async def forward(request: web.Request) -> web.Response:
            query = request.query_string
            raise web.HTTPFound(f"{target}?{query}" if query else target)

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "0.0.0.0", port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OAuthError(f"failed to start callback server on port {port}: {exc.strerror or exc}") from None
        self.forwarders[port] = runner

    async def stop_forwarder(self, port: int | None) -> None:
        if port is None or any(s.forwarder_port == port and s.status == "pending" for s in self.sessions.values()):
            return
        runner = self.forwarders.pop(port, None)
        if runner is not None:
            await runner.cleanup()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for port in list(self.forwarders):
            runner = self.forwarders.pop(port)
            await runner.cleanup()
