"""The client key table: who may call `/v1*`, and under which policy.

Keys are indexed by their SHA-256 digest, so a presented key is hashed once and looked up in a
dict; the matched entry is then confirmed with a constant-time comparison. Keys may be configured
as plain strings or, per issue 8, as objects with `key` or only `key-sha256`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cliproxy.accounts.model import TeamRules
from cliproxy.config.model import ClientKey


def secret_digest(secret: str) -> str:
    """The SHA-256 hex digest a secret (key, token, one-time code) is kept and looked up by."""
    return hashlib.sha256(secret.encode()).hexdigest()


KEY_PREFIX = "sk-cp-"  # keys this proxy makes: the management API's client keys and members' keys


def new_key(prefix: str = KEY_PREFIX) -> tuple[str, str]:
    """A fresh client key and its SHA-256 hex digest (all that is kept of it)."""
    key = prefix + secrets.token_urlsafe(32)
    return key, secret_digest(key)


def redact(secret: str) -> str:
    """`sk-…abcd`: enough to recognise a key in logs, never enough to use it."""
    if len(secret) <= 8:
        return "…"
    head = secret[:3] if secret[:3].isascii() else ""
    return f"{head}…{secret[-4:]}"


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The caller of a request: a stable id safe to log and store, and its policy (if any)."""

    key_id: str  # redacted form, or the key object's name
    name: str
    digest: bytes
    policy: ClientKey | None = None
    expires_at: float | None = None  # UTC epoch seconds (from `policy.expires`), parsed once per snapshot
    limited: bool = False  # the policy has scopes or limits that dispatch must check
    # A key of a signed-up user (users and teams): its team's rules, its owner, what kind of key.
    team: TeamRules | None = None
    owner: str = ""  # the user's email
    login_token: bool = False  # the personal token of a CLI login
    read_only: bool = False  # a viewer role: may look (whoami, models), not use models


@dataclass(frozen=True, slots=True)
class KeyTable:
    by_digest: dict[bytes, ClientIdentity]
    closed: bool = False  # no keys but still not open (users exist who will make keys)

    @property
    def open(self) -> bool:
        """No keys configured: every request is allowed (CLIProxyAPI's legacy open proxy)."""
        return not self.by_digest and not self.closed

    def lookup(self, presented: str) -> ClientIdentity | None:
        digest = hashlib.sha256(presented.encode()).digest()
        identity = self.by_digest.get(digest)
        if identity is not None and hmac.compare_digest(identity.digest, digest):
            return identity
        return None


def build_key_table(keys: tuple[str | ClientKey, ...]) -> KeyTable:
    table: dict[bytes, ClientIdentity] = {}
    for item in keys:
        if isinstance(item, str):
            digest = hashlib.sha256(item.encode()).digest()
            table[digest] = ClientIdentity(redact(item), redact(item), digest)
        else:
            digest = bytes.fromhex(item.key_sha256) if item.key_sha256 else hashlib.sha256(item.key.encode()).digest()
            label = item.name or (redact(item.key) if item.key else f"sha256:{item.key_sha256[:8]}")
            table[digest] = ClientIdentity(label, label, digest, item, item.expires_at, item.has_limits)
    return KeyTable(table)


OPEN_IDENTITY = ClientIdentity("anonymous", "anonymous", b"")
