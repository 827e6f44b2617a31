"""The management guard: who may call `/v0/management/*`, and as which role (CLIProxyAPI's rules).

It runs as the middleware of the management sub-app only, so the client hot path never pays for
it. Order per request: availability (404, empty body, while no secret is configured) → ban (403
with the time left) → remote access (403, not counted) → missing key (401, not counted) → the
`MANAGEMENT_PASSWORD` env value (constant time) → bcrypt against `secret-key` (admin) and the
viewer hashes (viewer). A wrong key counts; the 5th within the window bans the client for 30
minutes, and during a ban even the right key is refused.

bcrypt costs ~200 ms of CPU, so it runs in a worker thread and successful verifications are
remembered by the SHA-256 of the presented key and the hash it matched: the web panel polls
several endpoints a second and must not burn a core doing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import istr

from cliproxy import __version__, jsonio
from cliproxy.accounts.service import Accounts
from cliproxy.management.bans import BAN_SECONDS, FAILURE_WINDOW_SECONDS, MAX_FAILURES, GuardBans
from cliproxy.portal.caller import csrf_refusal, session_caller
from cliproxy.runtime import ManagementAccess, Runtime, RuntimeHolder

log = logging.getLogger(__name__)

Role = Literal["admin", "viewer"]
MGMT_ROLE = web.RequestKey("mgmt_role", str)  # "admin" or "viewer", set for every authorised request
MGMT_USER = web.RequestKey("mgmt_user", str)  # the email of a signed-in admin user ('' for a key)
USER_ROLES: dict[str, Role] = {"admin": "admin", "admin-viewer": "viewer"}

VERIFIED_CACHE_SIZE = 256
# Paths that only the availability check applies to (the OAuth provider redirects the browser here).
KEYLESS_PATHS = frozenset({"/v0/management/oauth-callback"})
MANAGEMENT_HEADERS = {
    "Cache-Control": "no-store",
    "X-CPA-VERSION": __version__,
    "X-CPA-COMMIT": "none",
    "X-CPA-BUILD-DATE": "unknown",
    "X-CPA-SUPPORT-PLUGIN": "false",
}
_AUTHORIZATION = istr("Authorization")
_X_MANAGEMENT_KEY = istr("X-Management-Key")
_X_FORWARDED_FOR = istr("X-Forwarded-For")


def go_duration(seconds: float) -> str:
    """Go's `Duration.String()` of a duration rounded to whole seconds: `29m41s`, `1h0m0s`, `5s`."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(slots=True)
class _Attempts:
    failures: int = 0
    last_failure: float = 0.0
    banned_until: float = 0.0


@dataclass
class GuardState:
    """Per-process guard memory: failure counters and bans per client IP, verified-key cache.

    The guard counts through `bans`: this process's counters (`LocalGuardBans`) by default, or the
    cluster's (in Redis) when the composition root sets them."""

    attempts: dict[str, _Attempts] = field(default_factory=dict)
    verified: dict[tuple[bytes, str], Role] = field(default_factory=dict)
    bans: GuardBans = field(init=False)

    def __post_init__(self) -> None:
        self.bans = LocalGuardBans(self)

    def ban_left(self, ip: str, now: float) -> float:
        entry = self.attempts.get(ip)
        if entry is None or not entry.banned_until:
            return 0.0
        if entry.banned_until > now:
            return entry.banned_until - now
        del self.attempts[ip]  # an expired ban resets the counter
        return 0.0

    def fail(self, ip: str, now: float) -> None:
        entry = self.attempts.setdefault(ip, _Attempts())
        if entry.last_failure and now - entry.last_failure > FAILURE_WINDOW_SECONDS:
            entry.failures = 0
        entry.failures += 1
        entry.last_failure = now
        if entry.failures >= MAX_FAILURES:
            entry.failures = 0
            entry.banned_until = now + BAN_SECONDS
            log.warning("management: client %s banned for %s after %d wrong keys", ip, "30m", MAX_FAILURES)
        self._prune(now)

    def succeed(self, ip: str) -> None:
        self.attempts.pop(ip, None)

    def _prune(self, now: float) -> None:
        if len(self.attempts) < 1024:
            return
        for ip in [
            ip
            for ip, e in self.attempts.items()
            if e.banned_until < now and now - e.last_failure > FAILURE_WINDOW_SECONDS
        ]:
            del self.attempts[ip]

    def remember(self, digest: bytes, secret_hash: str, role: Role) -> None:
        if len(self.verified) >= VERIFIED_CACHE_SIZE:
            self.verified.clear()
        self.verified[(digest, secret_hash)] = role


class LocalGuardBans:
    """`GuardBans` in this process's memory (the `GuardState` counters)."""

    def __init__(self, state: GuardState) -> None:
        self.state = state

    async def ban_left(self, ip: str) -> float:
        return self.state.ban_left(ip, time.monotonic())

    async def fail(self, ip: str) -> None:
        self.state.fail(ip, time.monotonic())

    async def succeed(self, ip: str) -> None:
        self.state.succeed(ip)


def _is_loopback(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def _in_networks(ip: str, runtime: Runtime) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    return any(addr in net for net in runtime.trusted_proxies)


def client_ip(request: web.Request, runtime: Runtime) -> str:
    """The socket peer; `X-Forwarded-For` only counts when that peer is a configured trusted proxy.

    Walking the header from the right and skipping trusted hops finds the first address that a
    proxy we trust actually saw; the left-most entries are whatever the client chose to send.
    """
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not isinstance(peer, tuple | list) or not peer:
        return "unix"  # a Unix socket (or an unknown transport) is on this machine
    ip = str(peer[0])
    if not runtime.trusted_proxies or not _in_networks(ip, runtime):
        return ip
    forwarded = request.headers.getall(_X_FORWARDED_FOR, [])
    hops = [h.strip() for line in forwarded for h in line.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, runtime):
            return hop
    return hops[0] if hops else ip


def is_local(ip: str) -> bool:
    return ip == "unix" or _is_loopback(ip)


def presented_key(request: web.Request) -> str:
    """`Authorization: Bearer <x>` (untrimmed) or the whole header, else `X-Management-Key`."""
    auth = request.headers.get(_AUTHORIZATION, "")
    if auth:
        scheme, sep, token = auth.partition(" ")
        key = token if sep and scheme.lower() == "bearer" else auth
        if key:
            return key
    return request.headers.get(_X_MANAGEMENT_KEY, "")


def _bcrypt_match(key: bytes, hashes: tuple[str, ...]) -> str:
    """The first hash `key` matches, or ''. Runs in a worker thread."""
    import bcrypt

    for hashed in hashes:
        try:
            if bcrypt.checkpw(key, hashed.encode()):
                return hashed
        except ValueError:  # not a bcrypt hash (validated at load; defensive)
            continue
    return ""


async def verify(state: GuardState, access: ManagementAccess, key: str) -> Role | None:
    """The role `key` grants under `access`, or None."""
    if access.env_password and hmac.compare_digest(key.encode(), access.env_password.encode()):
        return "admin"
    digest = hashlib.sha256(key.encode()).digest()
    candidates: list[tuple[str, Role]] = []
    if access.secret_hash:
        candidates.append((access.secret_hash, "admin"))
    candidates.extend((h, "viewer") for h in access.viewer_hashes)
    for hashed, role in candidates:
        if state.verified.get((digest, hashed)) == role:
            return role
    if not candidates:
        return None
    matched = await asyncio.to_thread(_bcrypt_match, key.encode(), tuple(h for h, _ in candidates))
    for hashed, role in candidates:
        if matched and hashed == matched:
            state.remember(digest, hashed, role)
            return role
    return None


def _error(status: int, message: str) -> web.Response:
    return web.Response(body=jsonio.dumps({"error": message}), status=status, content_type="application/json")


def require_admin(request: web.Request) -> None:
    """Handlers that change anything call this first: viewers may only read."""
    if request.get(MGMT_ROLE) != "admin":
        raise web.HTTPForbidden(
            body=jsonio.dumps({"error": "admin role required"}),
            content_type="application/json",
        )


def management_guard(*, holder: RuntimeHolder, state: GuardState, accounts: Accounts | None = None) -> Middleware:
    """Build the sub-app middleware described in the module docstring.

    With `accounts`, a signed-in `admin` (or `admin-viewer`) user's panel session counts like the
    secret (or a viewer key) when no key is presented, under the same ban and remote rules; its
    state-changing calls need the session's CSRF token. Such users also switch the API on.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        runtime = holder.current
        access = runtime.management
        if not access.enabled and not (accounts is not None and accounts.has_managers):
            # No secret at all (or removed by reload): the API does not exist.
            return web.Response(status=404)
        if request.path in KEYLESS_PATHS:
            return await handler(request)
        ip = client_ip(request, runtime)
        left = await state.bans.ban_left(ip)
        if left:
            return _error(403, f"IP banned due to too many failed attempts. Try again in {go_duration(left)}")
        if not (access.allow_remote or is_local(ip)):
            return _error(403, "remote management disabled")
        key = presented_key(request)
        if not key and accounts is not None:
            caller = session_caller(request, accounts)
            if caller is not None:
                user_role = USER_ROLES.get(caller.user.role)
                if user_role is None:
                    return _error(403, "this account has no access to the management API")
                refusal = csrf_refusal(request, accounts, caller)
                if refusal is not None:
                    return _error(403, refusal)
                request[MGMT_ROLE] = user_role
                request[MGMT_USER] = caller.user.email
                return await handler(request)
        if not key:
            return _error(401, "missing management key")
        role = await verify(state, access, key)
        if role is None:
            await state.bans.fail(ip)
            return _error(401, "invalid management key")
        await state.bans.succeed(ip)
        request[MGMT_ROLE] = role
        return await handler(request)

    return middleware


async def add_management_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` of the sub-app: version headers and no caching, on every response."""
    response.headers.update(MANAGEMENT_HEADERS)
