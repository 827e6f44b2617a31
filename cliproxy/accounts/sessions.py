"""Signed-in sessions: signed, expiring cookie values backed by a server-side record.

A cookie value is `<id>.<expiry>.<mac>`: 32 random bytes, the expiry in epoch seconds and an
HMAC-SHA256 of both under the store's signing key. The server keeps only the SHA-256 of the id, so
neither the database nor a log line can hand anyone a working cookie; signing lets a forged or
tampered value be refused before any lookup. Every sign-in makes a new id (a value planted before
sign-in is worth nothing after it), and sign-out deletes the record, so a copied cookie dies
with the session. The CSRF token of a session is derived from it (an HMAC of its digest), so it
needs no storage and cannot be computed without the signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

COOKIE_NAME = "cliproxy_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class Session:
    digest: str  # SHA-256 hex of the session id
    email: str
    created: float
    expires: float
    via: str = "password"  # password, sso, invitation

    def record(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "email": self.email,
            "created": self.created,
            "expires": self.expires,
            "via": self.via,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SessionBook:
    """The live sessions by digest, and the key that signs their cookies."""

    def __init__(self, signing_key: bytes) -> None:
        self._key = signing_key
        self.by_digest: dict[str, Session] = {}

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def new(self, email: str, now: float, ttl: float, via: str) -> tuple[str, Session]:
        """A fresh session: the cookie value (shown to the browser once) and its record."""
        sid = _b64(secrets.token_bytes(32))
        expires = int(now + ttl)
        session = Session(hashlib.sha256(sid.encode()).hexdigest(), email, now, float(expires), via)
        self.by_digest[session.digest] = session
        return f"{sid}.{expires}.{self._mac(f'{sid}.{expires}')}", session

    def find(self, cookie: str, now: float) -> Session | None:
        """The live session a cookie value names, or None (forged, tampered, expired or ended)."""
        sid, _, rest = cookie.partition(".")
        expiry, _, mac = rest.partition(".")
        if not sid or not expiry.isdigit() or not mac or not cookie.isascii():
            return None  # compare_digest refuses non-ASCII text with a TypeError; no real cookie has any
        if not hmac.compare_digest(mac, self._mac(f"{sid}.{expiry}")) or int(expiry) <= now:
            return None
        session = self.by_digest.get(hashlib.sha256(sid.encode()).hexdigest())
        if session is None or session.expires <= now:
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf:" + session.digest)

    def csrf_ok(self, session: Session, presented: str) -> bool:
        return bool(presented) and presented.isascii() and hmac.compare_digest(presented, self.csrf_token(session))

    def end(self, digest: str) -> Session | None:
        return self.by_digest.pop(digest, None)

    def of_user(self, email: str) -> list[Session]:
        return [s for s in self.by_digest.values() if s.email == email]

    def expired(self, now: float) -> list[str]:
        return [d for d, s in self.by_digest.items() if s.expires <= now]
