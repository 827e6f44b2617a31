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
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from cliproxy.accounts.rules import AccountsError
from cliproxy.credentials.oauth import pkce_challenge

CODE_SECONDS = 600.0
DEVICE_INTERVAL_SECONDS = 2
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), nothing that reads as a digit
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_PENDING = 1000


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


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
    """Pending loopback codes and device codes (see the module docstring)."""

    def __init__(self) -> None:
        self.codes: dict[str, _Code] = {}
        self.devices: dict[str, _Device] = {}  # by device code digest

    def _prune(self, now: float) -> None:
        for book in (self.codes, self.devices):
            for digest in [d for d, item in book.items() if item.expires <= now]:
                del book[digest]
        if len(self.codes) + len(self.devices) >= MAX_PENDING:
            raise AccountsError(429, "too many pending CLI sign-ins: try again in a few minutes")

    def authorize(self, email: str, redirect_uri: str, challenge: str, now: float) -> str:
        """A one-time code for the CLI that sent `challenge` (PKCE S256) to `redirect_uri`."""
        if len(challenge) < 43 or len(challenge) > 128:
            raise AccountsError(400, "code_challenge: an S256 PKCE challenge is required")
        self._prune(now)
        code = secrets.token_urlsafe(32)
        self.codes[_digest(code)] = _Code(email, loopback_redirect(redirect_uri), challenge, now + CODE_SECONDS)
        return code

    def exchange(self, code: str, verifier: str, redirect_uri: str, now: float) -> str:
        """The email a code was issued for; the code is spent whatever the outcome."""
        pending = self.codes.pop(_digest(code), None) if code else None
        if pending is None or pending.expires <= now:
            raise AccountsError(400, "invalid_grant: the code is unknown, used or expired; run `cliproxy login` again")
        if pending.redirect_uri != redirect_uri:
            raise AccountsError(400, "invalid_grant: redirect_uri does not match")
        if not verifier or not hmac.compare_digest(pkce_challenge(verifier), pending.challenge):
            raise AccountsError(400, "invalid_grant: the PKCE verifier does not match")
        return pending.email

    def start_device(self, now: float) -> tuple[str, str]:
        """(device code for the CLI, user code for the person)."""
        self._prune(now)
        device_code = secrets.token_urlsafe(32)
        raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        user_code = f"{raw[:4]}-{raw[4:]}"
        self.devices[_digest(device_code)] = _Device(user_code, now + CODE_SECONDS)
        return device_code, user_code

    def approve_device(self, user_code: str, email: str, now: float) -> None:
        wanted = user_code.strip().upper().replace(" ", "")
        if len(wanted) == 8:
            wanted = f"{wanted[:4]}-{wanted[4:]}"
        for device in self.devices.values():
            if device.expires > now and not device.email and hmac.compare_digest(device.user_code, wanted):
                device.email = email
                return
        raise AccountsError(404, "no pending CLI sign-in has this code (it may have expired)")

    def poll(self, device_code: str, now: float) -> str | None:
        """The approving user's email (the device code is then spent), or None while pending."""
        digest = _digest(device_code) if device_code else ""
        device = self.devices.get(digest)
        if device is None or device.expires <= now:
            self.devices.pop(digest, None)
            raise AccountsError(400, "expired_token: the device code is unknown or expired; run `cliproxy login` again")
        if not device.email:
            return None
        del self.devices[digest]
        return device.email
