"""The accounts service: users, teams, access groups, invitations, members' keys and sessions.

Every record is kept in memory and written through to the accounts database (`AccountsDB`), so
reads are dict lookups and a restart or a config reload loses nothing. Changes are serialised by
one lock. After any change that can alter who a key is (a key made or revoked, a user disabled or
moved, a team paused, an access group edited) the member key table is rebuilt and swapped in one
reference, which the front door reads per request, as it reads the runtime snapshot.

Secrets never rest here in clear: a new key, CLI token or invitation link is returned once to the
caller that asked for it, and only its SHA-256 is kept.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cliproxy.accounts.cli_login import CliLogins, DeviceStarts, PendingCliLogins
from cliproxy.accounts.db import AccountsDB, Snapshot
from cliproxy.accounts.model import (
    AccountKey,
    Invitation,
    KeyKind,
    Role,
    Team,
    TeamRules,
    User,
    may_change_own,
    may_read_all,
)
from cliproxy.accounts.oidc import Identity, OpenIDClient, PendingSignIns
from cliproxy.accounts.passwords import LocalSignInLimits, LoginLimiter, Passwords, SignInLimits, password_problem
from cliproxy.accounts.rules import (
    AccountsError,
    identity_of,
    key_limits,
    key_models,
    normal_email,
    rules_of,
    team_models,
    valid_name,
)
from cliproxy.accounts.sessions import Session, SessionBook
from cliproxy.clientkeys import KeyTable, new_key, secret_digest
from cliproxy.config.model import SSO, Config

log = logging.getLogger(__name__)

CLI_TOKEN_PREFIX = "sk-cli-"
HOUR = 3600.0
DAY = 86_400.0


class Accounts:
    """See the module docstring. `config` gives the current config (its `sso`, lifetimes, lengths)."""

    def __init__(
        self,
        config: Callable[[], Config],
        *,
        passwords: Passwords | None = None,
        clock: Callable[[], float] = time.time,
        signin_limits: SignInLimits | None = None,
        cli: PendingCliLogins | None = None,
        oidc_pending: PendingSignIns | None = None,
    ) -> None:
        self.config = config
        self.passwords = passwords if passwords is not None else Passwords()
        self.clock = clock
        self.limiter = LoginLimiter()
        self.signin_limits = signin_limits if signin_limits is not None else LocalSignInLimits(self.limiter, clock)
        self.db: AccountsDB | None = None
        self.users: dict[str, User] = {}
        self.teams: dict[str, Team] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        self.invitations: dict[str, Invitation] = {}
        self.keys: dict[str, AccountKey] = {}
        self.sessions = SessionBook(secrets.token_bytes(32))
        self.table = KeyTable({})  # read by the front door per request
        self.owners: dict[str, AccountKey] = {}  # key_id → key, revoked ones too: usage still counts
        self.has_managers = False  # an admin or admin-viewer user exists: the management API is on
        self.cli = cli if cli is not None else CliLogins()  # pending CLI sign-ins (loopback codes, device codes)
        self.device_starts = DeviceStarts()  # device codes started per client address, in this process
        self.oidc = OpenIDClient(oidc_pending)  # single sign-on: provider discovery, keys, pending sign-ins
        self.lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.db is not None

    async def open(self, path: Path | None, *, shared: bool = False) -> None:
        """Load every record from `path` (None: accounts are off). `shared`: other processes use the
        file too (worker processes), so it is made now and `follow` keeps this copy current."""
        if path is None:
            return
        db = AccountsDB(path)
        snapshot = await db.open(create=shared)
        self.db = db
        self._load(snapshot)
        log.info("accounts: %d users, %d teams, %d keys (%s)", len(self.users), len(self.teams), len(self.keys), path)

    async def follow(self) -> None:
        """Take in what other processes wrote since the last call (records, sessions, signing key)."""
        if self.db is None:
            return
        async with self.lock:
            snapshot = await self.db.changes()
            if snapshot is not None:
                self._load(snapshot)

    def _load(self, snapshot: Snapshot) -> None:
        self.users = {u.email: u for u in snapshot.users}
        self.teams = {t.name: t for t in snapshot.teams}
        self.groups = dict(snapshot.access_groups)
        self.invitations = {i.digest: i for i in snapshot.invitations}
        self.keys = {k.id: k for k in snapshot.keys}
        self.sessions = SessionBook(snapshot.signing_key)
        now = self.clock()
        for record in snapshot.sessions:
            session = Session(**record)
            if session.expires > now:
                self.sessions.by_digest[session.digest] = session
        self.rebuild()

    async def close(self) -> None:
        await self.oidc.close()
        if self.db is not None:
            await self.db.close()
            self.db = None

    def _db(self) -> AccountsDB:
        if self.db is None:
            raise AccountsError(404, "users and teams are off on this proxy (accounts-db: off)")
        return self.db

    # -- the member key table ----------------------------------------------------------------------

    def team_rules(self, name: str) -> TeamRules | None:
        team = self.teams.get(name)
        return rules_of(team, self.groups) if team is not None else None

    def rebuild(self) -> None:
        """Rebuild the member key table and the key owners from the records (after every change)."""
        rules = {name: rules_of(team, self.groups) for name, team in self.teams.items()}
        table = {}
        owners = {}
        for key in self.keys.values():
            owners[key.key_id] = key
            user = self.users.get(key.email)
            if key.revoked or user is None:
                continue
            identity = identity_of(key, user, rules.get(key.team) if key.team else None)
            table[identity.digest] = identity
        self.owners = owners
        self.table = KeyTable(table, closed=bool(self.users))
        self.has_managers = any(may_read_all(u.role) and not u.disabled for u in self.users.values())

    def team_of_key(self, key_id: str) -> str | None:
        """The team a usage record's key spends for (the accountant's `team_of`)."""
        key = self.owners.get(key_id)
        return key.team if key is not None and key.team else None

    # -- users -----------------------------------------------------------------------------------

    def user(self, email: str) -> User:
        user = self.users.get(email.strip().lower())
        if user is None:
            raise AccountsError(404, "no such user")
        return user

    def _check_team(self, team: str) -> str:
        team = team.strip() if isinstance(team, str) else ""
        if team and team not in self.teams:
            raise AccountsError(400, f"team: no team named {team!r}")
        return team

    async def create_user(
        self, email: str, role: Role, team: str = "", *, password: str = "", sso_subject: str = ""
    ) -> User:
        email = normal_email(email)
        if password:
            self._password_ok(password)
        hashed = await self.passwords.hash(password) if password else ""
        async with self.lock:
            if email in self.users:
                raise AccountsError(409, f"a user {email} already exists")
            user = User(email, role, self._check_team(team), False, hashed, self.clock(), sso_subject)
            await self._db().put("users", email, user)
            self.users[email] = user
            self.rebuild()
        log.info("accounts: user %s created (%s%s)", email, role, f", team {user.team}" if user.team else "")
        return user

    async def update_user(self, email: str, **changes: Any) -> User:
        """Change `role`, `team`, `disabled` (or, for the user themselves, `password` already hashed)."""
        async with self.lock:
            user = self.user(email)
            if "team" in changes:
                changes["team"] = self._check_team(changes["team"])
            updated = replace(user, **changes)
            await self._db().put("users", user.email, updated)
            self.users[user.email] = updated
            if updated.disabled and not user.disabled:
                await self._end_sessions(user.email)
            self.rebuild()
        return updated

    async def set_password(self, email: str, password: str) -> User:
        self._password_ok(password)
        hashed = await self.passwords.hash(password)
        return await self.update_user(email, password_hash=hashed)

    def _password_ok(self, password: str) -> None:
        problem = password_problem(password, self.config().password_min_length)
        if problem is not None:
            raise AccountsError(400, f"password: {problem}")

    async def delete_user(self, email: str) -> None:
        """Delete a user: their sessions end and their keys are revoked (their spend stays counted)."""
        async with self.lock:
            user = self.user(email)
            now = self.clock()
            revoked = [replace(k, revoked=now) for k in self.keys.values() if k.email == user.email and not k.revoked]
            db = self._db()
            await db.put_many([("keys", k.id, k) for k in revoked])
            await db.delete("users", [user.email])
            for key in revoked:
                self.keys[key.id] = key
            del self.users[user.email]
            await self._end_sessions(user.email)
            self.rebuild()
        log.info("accounts: user %s deleted (%d keys revoked)", user.email, len(revoked))

    # -- teams and access groups -----------------------------------------------------------------

    async def put_team(self, team: Team) -> Team:
        async with self.lock:
            valid_name(team.name, "name")
            await self._db().put("teams", team.name, team)
            self.teams[team.name] = team
            self.rebuild()
        return team

    async def delete_team(self, name: str) -> None:
        async with self.lock:
            if name not in self.teams:
                raise AccountsError(404, "no such team")
            members = [u.email for u in self.users.values() if u.team == name]
            if members:
                raise AccountsError(409, f"team {name!r} still has members: {', '.join(sorted(members))}")
            await self._db().delete("teams", [name])
            del self.teams[name]
            self.rebuild()

    async def put_group(self, name: str, models: tuple[str, ...]) -> None:
        async with self.lock:
            valid_name(name, "name")
            await self._db().put("access_groups", name, list(models))
            self.groups[name] = models
            self.rebuild()

    async def delete_group(self, name: str) -> None:
        async with self.lock:
            if name not in self.groups:
                raise AccountsError(404, "no such access group")
            users = sorted(t.name for t in self.teams.values() if name in t.access_groups)
            if users:
                raise AccountsError(409, f"access group {name!r} is used by teams {', '.join(users)}")
            await self._db().delete("access_groups", [name])
            del self.groups[name]
            self.rebuild()

    # -- invitations -----------------------------------------------------------------------------

    async def invite(self, email: str, role: Role, team: str, invited_by: str) -> tuple[str, Invitation]:
        """A single-use invitation link token (returned once) and its record."""
        email = normal_email(email)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        ttl = self.config().invitation_expiration_days * DAY
        async with self.lock:
            if email in self.users:
                raise AccountsError(409, f"a user {email} already exists")
            team = self._check_team(team)
            invitation = Invitation(secret_digest(token), email, role, team, now, now + ttl, invited_by)
            await self._db().put("invitations", invitation.digest, invitation)
            self.invitations[invitation.digest] = invitation
        log.info("accounts: %s invited %s as %s", invited_by or "the management key", email, role)
        return token, invitation

    def invitation(self, token: str) -> Invitation:
        """The open invitation of a link token; 404 unknown, 410 used or expired."""
        invitation = self.invitations.get(secret_digest(token)) if token else None
        if invitation is None:
            raise AccountsError(404, "this invitation link is not valid")
        if invitation.used:
            raise AccountsError(410, "this invitation link was already used: sign in instead")
        if invitation.expires <= self.clock():
            raise AccountsError(410, "this invitation link has expired: ask an administrator for a new one")
        return invitation

    async def accept(self, token: str, password: str) -> User:
        """Use an invitation: the user is created with the password, the link is spent."""
        self._password_ok(password)
        self.invitation(token)
        hashed = await self.passwords.hash(password)
        async with self.lock:
            invitation = self.invitation(token)  # again: another request may have used it meanwhile
            email = invitation.email
            if email in self.users:
                raise AccountsError(409, f"a user {email} already exists: sign in instead")
            now = self.clock()
            team = invitation.team if invitation.team in self.teams else ""
            user = User(email, invitation.role, team, False, hashed, now)
            used = replace(invitation, used=now)
            await self._db().put_many([("users", email, user), ("invitations", used.digest, used)])
            self.users[email] = user
            self.invitations[used.digest] = used
            self.rebuild()
        log.info("accounts: invitation for %s accepted", email)
        return user

    async def withdraw(self, invitation_id: str) -> None:
        async with self.lock:
            found = [d for d in self.invitations if d.startswith(invitation_id)] if len(invitation_id) >= 8 else []
            if len(found) != 1:
                raise AccountsError(404, "no such invitation")
            await self._db().delete("invitations", found)
            del self.invitations[found[0]]

    # -- sign-in and sessions --------------------------------------------------------------------

    async def check_password(self, email: str, password: str, address: str) -> User:
        """The user whose email and password these are; refusals are counted (see `LoginLimiter`)."""
        account = email.strip().lower() if isinstance(email, str) else ""
        wait = await self.signin_limits.wait(address, account)
        if wait:
            raise AccountsError(429, "too many failed sign-ins: try again later", retry_after=int(wait) + 1)
        user = self.users.get(account)
        if not await self.passwords.check(password, user.password_hash if user is not None else ""):
            await self.signin_limits.failed(address, account)
            log.info("accounts: failed sign-in for an account from %s", address)
            raise AccountsError(401, "wrong email or password")
        assert user is not None
        await self.signin_limits.succeeded(account)
        if user.disabled:
            raise AccountsError(403, "this account is disabled")
        return user

    async def start_session(self, user: User, via: str, *, replaces: Session | None = None) -> tuple[str, Session]:
        """A new session for `user` (a new id, always); the session it replaces ends."""
        now = self.clock()
        ttl = self.config().session_expiration_hours * HOUR
        async with self.lock:
            db = self._db()
            stale = self.sessions.expired(now)
            if replaces is not None:
                stale.append(replaces.digest)
            for digest in stale:
                self.sessions.end(digest)
            cookie, session = self.sessions.new(user.email, now, ttl, via)
            await db.put("sessions", session.digest, session.record())
            if stale:
                await db.delete("sessions", stale)
        return cookie, session

    def session_user(self, cookie: str) -> tuple[Session, User] | None:
        session = self.sessions.find(cookie, self.clock())
        if session is None:
            return None
        user = self.users.get(session.email)
        if user is None or user.disabled:
            return None
        return session, user

    async def end_session(self, session: Session) -> None:
        async with self.lock:
            if self.sessions.end(session.digest) is not None:
                await self._db().delete("sessions", [session.digest])

    async def _end_sessions(self, email: str) -> None:
        digests = [s.digest for s in self.sessions.of_user(email)]
        for digest in digests:
            self.sessions.end(digest)
        if digests:
            await self._db().delete("sessions", digests)

    async def sso_user(self, identity: Identity, sso: SSO) -> User:
        """The user a verified single sign-on names: the first sign-in of an allowed email creates
        them with the configured defaults; later ones must come from the same provider account."""
        user = self.users.get(identity.email)
        if user is None:
            team = sso.default_team if sso.default_team in self.teams else ""
            return await self.create_user(identity.email, sso.default_role, team, sso_subject=identity.subject)
        if user.disabled:
            raise AccountsError(403, "this account is disabled")
        if user.sso_subject and not hmac.compare_digest(user.sso_subject, identity.subject):
            raise AccountsError(403, "this email belongs to another account of the sign-on provider")
        if not user.sso_subject:
            user = await self.update_user(user.email, sso_subject=identity.subject)
        return user

    # -- members' keys ---------------------------------------------------------------------------

    def keys_of(self, email: str, *, kind: KeyKind | None = None) -> list[AccountKey]:
        return sorted(
            (k for k in self.keys.values() if k.email == email and (kind is None or k.kind == kind)),
            key=lambda k: k.created,
        )

    def allowed_models(self, user: User) -> tuple[str, ...]:
        return team_models(self.teams.get(user.team), self.groups)

    async def create_key(
        self,
        user: User,
        name: Any,
        *,
        models: Any = None,
        limits: Any = None,
        expires: float | None = None,
        kind: KeyKind = "key",
    ) -> tuple[str, AccountKey]:
        """A key for `user` within their team's access groups and per-key ceiling; (secret, record)."""
        if kind == "key" and not may_change_own(user.role):
            raise AccountsError(403, f"the {user.role} role cannot create keys")
        name = valid_name(name, "name")
        team = self.teams.get(user.team)
        chosen_models = key_models(models, self.allowed_models(user))
        chosen_limits = key_limits(limits, team)
        now = self.clock()
        if expires is not None and expires <= now:
            raise AccountsError(400, "expires: must be in the future")
        secret, digest = new_key(CLI_TOKEN_PREFIX) if kind == "cli" else new_key()
        async with self.lock:
            if kind == "key" and any(k.name == name and not k.revoked for k in self.keys_of(user.email, kind="key")):
                raise AccountsError(409, f"you already have a key named {name!r}")
            key = AccountKey(
                id=secrets.token_hex(6),
                digest=digest,
                email=user.email,
                team=user.team,
                name=name,
                kind=kind,
                models=chosen_models,
                limits=chosen_limits,
                budget_period=team.budget_period if team is not None else "month",
                created=now,
                expires=expires,
            )
            await self._db().put("keys", key.id, key)
            self.keys[key.id] = key
            self.rebuild()
        log.info("accounts: %s made %s %s", user.email, "a CLI token" if kind == "cli" else "key", key.key_id)
        return secret, key

    async def create_cli_token(self, user: User) -> tuple[str, AccountKey]:
        hours = self.config().cli_token_expiration_hours
        now = self.clock()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        return await self.create_key(user, f"cli-{stamp}", expires=now + hours * HOUR, kind="cli")

    async def revoke_key(self, user: User, key_id: str) -> AccountKey:
        """Revoke one of `user`'s own keys (by id, or by name among their live keys)."""
        if not may_change_own(user.role):
            raise AccountsError(403, f"the {user.role} role cannot revoke keys")
        async with self.lock:
            key = self._own_key(user, key_id)
            revoked = replace(key, revoked=self.clock())
            await self._db().put("keys", key.id, revoked)
            self.keys[key.id] = revoked
            self.rebuild()
        log.info("accounts: %s revoked %s", user.email, key.key_id)
        return revoked

    def _own_key(self, user: User, ref: str) -> AccountKey:
        key = self.keys.get(ref)
        if key is None:
            live = [k for k in self.keys_of(user.email) if k.name == ref and not k.revoked]
            key = live[0] if len(live) == 1 else None
        if key is None or key.email != user.email:  # someone else's key is "not found", not "forbidden"
            raise AccountsError(404, "no such key")
        if key.revoked:
            raise AccountsError(409, "this key is already revoked")
        return key

    def members(self, team: str) -> Iterable[User]:
        return (u for u in self.users.values() if u.team == team)
