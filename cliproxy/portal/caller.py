"""Who is calling with a session cookie or a CLI login token, and the CSRF rule for cookie callers.

Shared by the `/v0/account` guard and the management guard (an `admin` or `admin-viewer` user
signed in to the panel manages the proxy with the same cookie). A cookie travels by itself with
every request the browser makes, so any state-changing call that a cookie authenticates must also
carry the session's CSRF token in `X-CSRF-Token` (a page of another site cannot read it) and, when
the browser names an `Origin`, come from this proxy's own origin. A bearer token is never sent by
the browser on its own, so calls that present one need neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from multidict import istr

from cliproxy.accounts.model import User
from cliproxy.accounts.service import Accounts
from cliproxy.accounts.sessions import COOKIE_NAME, CSRF_HEADER, Session
from cliproxy.server.access import expiry_refusal

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ORIGIN = istr("Origin")
_SEC_FETCH_SITE = istr("Sec-Fetch-Site")
_AUTHORIZATION = istr("Authorization")


@dataclass(frozen=True, slots=True)
class Caller:
    """A signed-in user: through a panel session (`session`), or a CLI login token (`session` None)."""

    user: User
    session: Session | None = None


CALLER = web.RequestKey("account_caller", Caller)


def cookie_of(request: web.Request) -> str:
    return request.cookies.get(COOKIE_NAME, "")


def session_caller(request: web.Request, accounts: Accounts) -> Caller | None:
    cookie = cookie_of(request)
    if not cookie or not accounts.enabled:
        return None
    found = accounts.session_user(cookie)
    return Caller(found[1], found[0]) if found is not None else None


def token_caller(request: web.Request, accounts: Accounts) -> Caller | str | None:
    """The user of a CLI login token in `Authorization: Bearer`, a 401 message, or None (no token)."""
    auth = request.headers.get(_AUTHORIZATION, "")
    if not auth.startswith("Bearer "):
        return None
    identity = accounts.table.lookup(auth[7:].strip())
    if identity is None or not identity.login_token:
        return "this token is not a CLI login token: sign in with `cliproxy login`"
    expired = expiry_refusal(identity)
    if expired is not None:
        return expired
    user = accounts.users.get(identity.owner)
    if user is None or user.disabled:
        return "this account is disabled"
    return Caller(user)


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get(_SEC_FETCH_SITE, "") == "cross-site":
        return False
    origin = request.headers.get(_ORIGIN)
    if not origin:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


def csrf_refusal(request: web.Request, accounts: Accounts, caller: Caller) -> str | None:
    """Why a cookie-authenticated, state-changing call is refused (None: it may go on)."""
    if request.method in READ_METHODS or caller.session is None:
        return None
    if not same_origin(request):
        return "cross-site request refused"
    if not accounts.sessions.csrf_ok(caller.session, request.headers.get(CSRF_HEADER, "")):
        return "missing or wrong CSRF token (send the X-CSRF-Token header the sign-in returned)"
    return None
