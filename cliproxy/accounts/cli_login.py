"""The CLI's sign-in against this proxy: a loopback authorization code with PKCE, or a device code.

Loopback: the CLI listens on `http://127.0.0.1:<port>/…`, opens the browser on the panel with
its redirect address, state and PKCE challenge; the signed-in user approves, the panel sends the
browser to the loopback address with a one-time code, and the CLI trades the code and its PKCE
verifier for a personal token. Only loopback redirect addresses are accepted, so a code can
never be sent to another machine, and a code without its verifier is worth nothing.

Device: for a machine without a browser, the CLI asks for a device code, shows the user code,
and polls; the user types the code into the panel (signed in) to approve it.

Pending codes live in memory for `CODE_SECONDS` (a restart only means signing in again); they
are kept by SHA-256, are single use, and say nothing about the user until the token is issued.
Loopback codes and device codes have separate caps: anyone may start a device code, only a
signed-in user may make a loopback code, so a flood of anonymous device codes must never stop
signed-in users from signing in the CLI. `DeviceStarts` also limits device codes per address.
Callers use the `PendingCliLogins` protocol: `CliLogins` here, or with `shared-state.redis-url`
the same records in Redis, so the approval or the poll may land on any process of a cluster.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from cliproxy.accounts.rules import AccountsError
from cliproxy.clientkeys import secret_digest
from cliproxy.credentials.oauth import pkce_challenge

CODE_SECONDS = 600.0
DEVICE_INTERVAL_SECONDS = 2
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), nothing that reads as a digit
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_PENDING = 1000  # loopback codes, made by signed-in users
MAX_PENDING_DEVICES = 1000  # device codes, which anyone may start
DEVICE_STARTS_PER_ADDRESS = 10  # device codes one client address may start per window
DEVICE_STARTS_WINDOW_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 10_000
TOO_MANY_PENDING = "too many pending CLI sign-ins: try again in a few minutes"


def check_challenge(challenge: str) -> None:
    if len(challenge) < 43 or len(challenge) > 128:
        raise AccountsError(400, "code_challenge: an S256 PKCE challenge is required")


def check_exchange(pending_redirect: str, challenge: str, redirect_uri: str, verifier: str) -> None:
    """A pending code's redirect address and PKCE challenge against what the CLI presents."""
    if pending_redirect != redirect_uri:
        raise AccountsError(400, "invalid_grant: redirect_uri does not match")
    if not verifier or not hmac.compare_digest(pkce_challenge(verifier), challenge):
        raise AccountsError(400, "invalid_grant: the PKCE verifier does not match")


def new_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def typed_user_code(user_code: str) -> str:
    """A user code as typed (any case, spaces, with or without the dash) in its stored form."""
    wanted = user_code.strip().upper().replace(" ", "")
    return f"{wanted[:4]}-{wanted[4:]}" if len(wanted) == 8 else wanted


UNKNOWN_CODE = "invalid_grant: the code is unknown, used or expired; run `cliproxy login` again"
UNKNOWN_USER_CODE = "no pending CLI sign-in has this code (it may have expired)"
UNKNOWN_DEVICE = "expired_token: the device code is unknown or expired; run `cliproxy login` again"


class PendingCliLogins(Protocol):
    async def authorize(self, email: str, redirect_uri: str, challenge: str, now: float) -> str:
        """A one-time code for the CLI that sent `challenge` (PKCE S256) to `redirect_uri`."""
        ...

    async def exchange(self, code: str, verifier: str, redirect_uri: str, now: float) -> str:
        """The email a code was issued for; the code is spent whatever the outcome."""
        ...

    async def start_device(self, now: float) -> tuple[str, str]:
        """(device code for the CLI, user code for the person)."""
        ...

    async def approve_device(self, user_code: str, email: str, now: float) -> None: ...

    async def poll(self, device_code: str, now: float) -> str | None:
        """The approving user's email (the device code is then spent), or None while pending."""
        ...


def loopback_redirect(uri: str) -> str:
    """`uri` when it is an `http://` address on this machine (with a port), else a 400."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is None or parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or not port:
        raise AccountsError(400, "redirect_uri: must be http://127.0.0.1:<port>/… (the CLI on this machine)")
    if parts.username or parts.password or parts.fragment:
        raise AccountsError(400, "redirect_uri: no user, password or fragment")
    return uri


@dataclass(slots=True)
class _Code:
    email: str
    redirect_uri: str
    challenge: str
    expires: float


@dataclass(slots=True)
class _Device:
    user_code: str
    expires: float
    email: str = ""  # set once a signed-in user approved it


class CliLogins:
    """Pending loopback codes and device codes in this process (see the module docstring)."""

    def __init__(self) -> None:
        self.codes: dict[str, _Code] = {}
        self.devices: dict[str, _Device] = {}  # by device code digest

    def _prune(self, book: dict[str, _Code] | dict[str, _Device], cap: int, now: float) -> None:
        for digest in [d for d, item in book.items() if item.expires <= now]:
            del book[digest]
        if len(book) >= cap:
            raise AccountsError(429, TOO_MANY_PENDING)

    async def authorize(self, email: str, redirect_uri: str, challenge: str, now: float) -> str:
        check_challenge(challenge)
        self._prune(self.codes, MAX_PENDING, now)
        code = secrets.token_urlsafe(32)
        self.codes[secret_digest(code)] = _Code(email, loopback_redirect(redirect_uri), challenge, now + CODE_SECONDS)
        return code

    async def exchange(self, code: str, verifier: str, redirect_uri: str, now: float) -> str:
        pending = self.codes.pop(secret_digest(code), None) if code else None
        if pending is None or pending.expires <= now:
            raise AccountsError(400, UNKNOWN_CODE)
        check_exchange(pending.redirect_uri, pending.challenge, redirect_uri, verifier)
        return pending.email

    async def start_device(self, now: float) -> tuple[str, str]:
        self._prune(self.devices, MAX_PENDING_DEVICES, now)
        device_code = secrets.token_urlsafe(32)
        user_code = new_user_code()
        self.devices[secret_digest(device_code)] = _Device(user_code, now + CODE_SECONDS)
        return device_code, user_code

    async def approve_device(self, user_code: str, email: str, now: float) -> None:
        wanted = typed_user_code(user_code)
        for device in self.devices.values():
            if device.expires > now and not device.email and hmac.compare_digest(device.user_code, wanted):
                device.email = email
                return
        raise AccountsError(404, UNKNOWN_USER_CODE)

    async def poll(self, device_code: str, now: float) -> str | None:
        digest = secret_digest(device_code) if device_code else ""
        device = self.devices.get(digest)
        if device is None or device.expires <= now:
            self.devices.pop(digest, None)
            raise AccountsError(400, UNKNOWN_DEVICE)
        if not device.email:
            return None
        del self.devices[digest]
        return device.email


@dataclass
class DeviceStarts:
    """Device codes started per client address in a sliding window, in this process.

    `/cli/device` needs no sign-in, so without this one address could take every pending device
    slot. Its own counter, not the sign-in lockouts: starting device codes must never lock an
    address out of password sign-ins. At most `MAX_TRACKED_ADDRESSES` are tracked; past that the
    longest-known ones are forgotten first.
    """

    per_address: int = DEVICE_STARTS_PER_ADDRESS
    window: float = DEVICE_STARTS_WINDOW_SECONDS
    starts: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, address: str, now: float) -> bool:
        """Whether `address` may start one more device code now (counted when it may)."""
        stamps = self.starts.get(address)
        if stamps is None:
            while len(self.starts) >= MAX_TRACKED_ADDRESSES:
                del self.starts[next(iter(self.starts))]
            stamps = self.starts[address] = deque(maxlen=self.per_address)
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if len(stamps) >= self.per_address:
            return False
        stamps.append(now)
        return True
