"""The auth-dir: parse credential files into immutable `AuthFileCredential`s, write them back safely.

A CLIProxyAPI auth-dir must load unchanged (spec §7.1): only `*.json` direct children are read,
types other than `claude`, `codex` and `vertex` are skipped and reported (never rewritten), legacy
kebab-case keys are accepted, and expiry / last-refresh times are found under any of the names the
Go project and its ancestors used. Loading never writes; `write_credential_file` is the one writer
(atomic, 0600) used by logins, refreshes and the management API.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cliproxy.config.write import atomic_write_bytes

if TYPE_CHECKING:
    from cliproxy.config.model import Config
    from cliproxy.routing.credentials import Credential

log = logging.getLogger(__name__)

SUPPORTED_TYPES = frozenset({"claude", "codex", "vertex"})
# Types CLIProxyAPI itself ignores today; skipped quietly (debug log) rather than reported loudly.
IGNORED_TYPES = frozenset({"", "gemini", "gemini-cli"})
MAX_WEIGHT = 1_000_000
FILE_MODE = 0o600

EXPIRY_KEYS = ("expired", "expire", "expires_at", "expiresAt", "expiry", "expires")
LAST_REFRESH_KEYS = ("last_refresh", "lastRefresh", "last_refreshed_at", "lastRefreshedAt")
# Legacy kebab-case names rewritten to snake_case (spec §2.7 "Fields").
LEGACY_KEYS = {
    "proxy-url": "proxy_url",
    "api-key": "api_key",
    "base-url": "base_url",
    "disable-cooling": "disable_cooling",
    "excluded-models": "excluded_models",
    "fingerprint-profile": "fingerprint_profile",
    "model-aliases": "model_aliases",
    "request-retry": "request_retry",
    "request-scoped-errors": "request_scoped_errors",
    "refresh-interval-seconds": "refresh_interval_seconds",
}
_SAFE_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]+$")


class CredentialFileError(ValueError):
    """A credential file that cannot be used; the message names the field and what is wrong."""


@dataclass(frozen=True)
class ModelAlias:
    """`model_aliases[]` entry: upstream model `name` offered to clients as `alias`."""

    name: str
    alias: str
    fork: bool = False
    force_mapping: bool = False


@dataclass(frozen=True)
class AuthFileCredential:
    """One credential file as the runtime sees it. Immutable: a refresh produces a new object."""

    id: str
    path: Path
    type: str
    auth_index: str
    label: str
    metadata: Mapping[str, Any]
    sha256: str = ""
    email: str = ""
    disabled: bool = False
    prefix: str = ""
    proxy_url: str = ""
    priority: int = 0
    weight: int | None = None
    note: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    excluded_models: tuple[str, ...] = ()
    model_aliases: tuple[ModelAlias, ...] = ()
    request_retry: int | None = None
    request_scoped_errors: tuple[Any, ...] = ()  # config `ScopedErrorRule`s, before the channel's own
    disable_cooling: bool | None = None
    websockets: bool = False
    refresh_interval_seconds: int | None = None
    expires_at: datetime | None = None
    last_refresh: datetime | None = None
    insecure_mode: bool = False

    @property
    def provider(self) -> str:
        return self.type

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def access_token(self) -> str:
        return _str(self.metadata.get("access_token")) or _str(_nested(self.metadata, "token", "access_token"))

    @property
    def refresh_token(self) -> str:
        return _str(self.metadata.get("refresh_token")) or _str(_nested(self.metadata, "token", "refresh_token"))

    @property
    def account_id(self) -> str:
        """Codex: the ChatGPT account id (file field, else the id_token claim)."""
        value = _str(self.metadata.get("account_id"))
        if value:
            return value
        return _str(codex_auth_claims(_str(self.metadata.get("id_token"))).get("chatgpt_account_id"))

    @property
    def plan_type(self) -> str:
        return _str(codex_auth_claims(_str(self.metadata.get("id_token"))).get("chatgpt_plan_type"))

    @property
    def project_id(self) -> str:
        return _str(self.metadata.get("project_id"))

    @property
    def location(self) -> str:
        return _str(self.metadata.get("location")) or "us-central1"

    @property
    def service_account(self) -> Mapping[str, Any]:
        value = self.metadata.get("service_account")
        return value if isinstance(value, Mapping) else {}

    def to_credential(self, config: Config) -> Credential | None:
        """The routing layer's `CredentialSource` hook: this file as a routable credential."""
        from cliproxy.credentials.executors import build_credential

        return build_credential(self, config)

    def metadata_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of the file contents, to edit and write back."""
        copied: dict[str, Any] = json.loads(json.dumps(dict(self.metadata)))
        return copied


@dataclass(frozen=True)
class LoadResult:
    """What a scan of auth-dir produced: usable credentials, invalid files, skipped files."""

    credentials: tuple[AuthFileCredential, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- parsing helpers


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _nested(data: Mapping[str, Any], *keys: str) -> Any:
    current: Any = data
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def auth_index_for(cred_type: str, path: Path) -> str:
    """Stable index the management UI joins on: sha256("<type>:<absolute path>")[:16]."""
    return hashlib.sha256(f"{cred_type}:{path.absolute()}".encode()).hexdigest()[:16]


def parse_time(value: Any) -> datetime | None:
    """RFC3339 text or a Unix timestamp (seconds, or milliseconds when it is that large)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            return None
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return parse_time(float(text))
        # Go writes nanosecond fractions; Python's parser takes at most microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def format_time(moment: datetime) -> str:
    """RFC3339 in UTC, second precision: what CLIProxyAPI and its web UI read."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_time(data: Mapping[str, Any], keys: tuple[str, ...]) -> datetime | None:
    for scope in (data, data.get("token")):
        if not isinstance(scope, Mapping):
            continue
        for key in keys:
            if key in scope:
                parsed = parse_time(scope[key])
                if parsed is not None:
                    return parsed
    return None


def _int_field(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip():
        try:
            number = float(value.strip())
        except ValueError:
            raise CredentialFileError(f"{key}: not a number: {value!r}") from None
        if number.is_integer():
            return int(number)
    raise CredentialFileError(f"{key}: not an integer: {value!r}")


def _bool_field(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise CredentialFileError(f"{key}: not a boolean: {value!r}")


def canonical_metadata(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite legacy kebab-case keys to snake_case; a snake_case key already present wins."""
    out = dict(data)
    for legacy, canonical in LEGACY_KEYS.items():
        if legacy in out:
            value = out.pop(legacy)
            out.setdefault(canonical, value)
    if "type" in out and isinstance(out["type"], str):
        out["type"] = out["type"].strip().lower()
    return out


def _model_aliases(value: Any) -> tuple[ModelAlias, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CredentialFileError("model_aliases: expected a list of {name, alias}")
    aliases: list[ModelAlias] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise CredentialFileError(f"model_aliases[{i}]: expected an object")
        name, alias = _str(item.get("name")), _str(item.get("alias"))
        if not name or not alias:
            raise CredentialFileError(f"model_aliases[{i}]: name and alias are required")
        if name.lower() == alias.lower():
            continue
        aliases.append(
            ModelAlias(
                name=name,
                alias=alias,
                fork=bool(item.get("fork", False)),
                force_mapping=bool(item.get("force-mapping", item.get("force_mapping", False))),
            )
        )
    return tuple(aliases)


def _scoped_rules(value: Any) -> tuple[Any, ...]:
    """`request_scoped_errors`: validated by the same model as the config's rules."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CredentialFileError("request_scoped_errors: expected a list of {status, match, action}")
    from pydantic import ValidationError

    from cliproxy.config.model import ScopedErrorRule

    rules = []
    for i, item in enumerate(value):
        try:
            rules.append(ScopedErrorRule.model_validate(item))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise CredentialFileError(f"request_scoped_errors[{i}].{where}: {problem['msg']}") from None
    return tuple(rules)


def _excluded(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CredentialFileError("excluded_models: expected a list of patterns")
    seen: dict[str, None] = {}
    for item in value:
        pattern = _str(item).lower()
        if pattern:
            seen[pattern] = None
    return tuple(seen)


def _headers(value: Any) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise CredentialFileError("headers: expected an object of header: value")
    clean = {str(k).strip(): str(v).strip() for k, v in value.items() if str(k).strip() and str(v).strip()}
    return MappingProxyType(clean)


def _prefix(value: Any) -> str:
    text = _str(value).strip("/")
    return "" if "/" in text else text


def _check_type_fields(cred_type: str, data: Mapping[str, Any]) -> None:
    if cred_type in ("claude", "codex"):
        if not (_str(data.get("access_token")) or _str(data.get("refresh_token"))):
            raise CredentialFileError(f"{cred_type}: access_token or refresh_token is required")
    elif cred_type == "vertex":
        sa = data.get("service_account")
        if not isinstance(sa, Mapping):
            raise CredentialFileError("vertex: service_account (the Google service-account JSON object) is required")
        for key in ("client_email", "private_key"):
            if not _str(sa.get(key)):
                raise CredentialFileError(f"vertex: service_account.{key} is required")
        if not (_str(data.get("project_id")) or _str(sa.get("project_id"))):
            raise CredentialFileError("vertex: project_id is required")


def credential_from_metadata(
    data: Mapping[str, Any],
    *,
    path: Path,
    auth_dir: Path,
    sha256: str = "",
    insecure_mode: bool = False,
) -> AuthFileCredential:
    """Validate one parsed file and build its credential; raises `CredentialFileError`."""
    meta = canonical_metadata(data)
    cred_type = _str(meta.get("type")).lower()
    if cred_type not in SUPPORTED_TYPES:
        raise CredentialFileError(f"unsupported credential type {cred_type!r}")
    _check_type_fields(cred_type, meta)
    if cred_type == "vertex" and not _str(meta.get("project_id")):
        meta["project_id"] = _str(meta["service_account"].get("project_id"))
    weight = _int_field(meta, "weight")
    if weight is not None and not 0 <= weight <= MAX_WEIGHT:
        raise CredentialFileError(f"weight: must be between 0 and {MAX_WEIGHT:,}")
    try:
        priority = _int_field(meta, "priority") or 0
    except CredentialFileError:
        log.warning("%s: ignoring a priority that is not a number", path.name)
        priority = 0
    email = _str(meta.get("email"))
    if cred_type == "vertex" and not email:
        email = _str(meta["service_account"].get("client_email"))
    absolute = path.absolute()
    try:
        rel = absolute.relative_to(auth_dir.absolute()).as_posix()
    except ValueError:
        rel = path.name
    return AuthFileCredential(
        id=rel.lower() if os.name == "nt" else rel,
        path=absolute,
        type=cred_type,
        auth_index=auth_index_for(cred_type, absolute),
        label=email or _str(meta.get("label")) or cred_type,
        metadata=MappingProxyType(meta),
        sha256=sha256,
        email=email,
        disabled=bool(_bool_field(meta, "disabled")),
        prefix=_prefix(meta.get("prefix")),
        proxy_url=_str(meta.get("proxy_url")),
        priority=priority,
        weight=weight,
        note=_str(meta.get("note")),
        headers=_headers(meta.get("headers")),
        excluded_models=_excluded(meta.get("excluded_models")),
        model_aliases=_model_aliases(meta.get("model_aliases")),
        request_retry=_int_field(meta, "request_retry"),
        request_scoped_errors=_scoped_rules(meta.get("request_scoped_errors")),
        disable_cooling=_bool_field(meta, "disable_cooling"),
        websockets=bool(_bool_field(meta, "websockets")),
        refresh_interval_seconds=_int_field(meta, "refresh_interval_seconds"),
        expires_at=_first_time(meta, EXPIRY_KEYS),
        last_refresh=_first_time(meta, LAST_REFRESH_KEYS),
        insecure_mode=insecure_mode,
    )


class SkippedFile(Exception):
    """A readable file of a type we do not serve (reported, never an error)."""


def load_credential_file(path: Path, auth_dir: Path) -> AuthFileCredential:
    """Read and parse one file; raises `CredentialFileError` or `SkippedFile`."""
    try:
        raw = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise CredentialFileError(f"cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CredentialFileError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialFileError("not a JSON object")
    cred_type = _str(data.get("type")).lower()
    if cred_type in IGNORED_TYPES:
        raise SkippedFile(f"type {cred_type or '(empty)'!r} is not served by cliproxy")
    if cred_type not in SUPPORTED_TYPES:
        raise SkippedFile(f"unsupported credential type {cred_type!r}")
    insecure = bool(mode & 0o077)
    if insecure:
        log.warning("%s is readable by group or others (mode %o); run: chmod 600 %s", path.name, mode, path.as_posix())
    return credential_from_metadata(
        data, path=path, auth_dir=auth_dir, sha256=hashlib.sha256(raw).hexdigest(), insecure_mode=insecure
    )


def load_auth_dir(auth_dir: Path) -> LoadResult:
    """Scan `auth_dir` (non-recursive, `*.json` only). A missing directory is an empty result."""
    credentials: list[AuthFileCredential] = []
    errors: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    try:
        entries = sorted(auth_dir.iterdir())
    except FileNotFoundError:
        return LoadResult()
    except OSError as exc:
        return LoadResult(errors=((str(auth_dir), f"cannot list auth-dir: {exc.strerror or exc}"),))
    for path in entries:
        if not path.name.endswith(".json") or not path.is_file():
            continue
        try:
            credentials.append(load_credential_file(path, auth_dir))
        except SkippedFile as exc:
            log.info("auth-dir: skipping %s: %s", path.name, exc)
            skipped.append((path.name, str(exc)))
        except CredentialFileError as exc:
            log.warning("auth-dir: invalid credential file %s: %s", path.name, exc)
            errors.append((path.name, str(exc)))
    return LoadResult(tuple(credentials), tuple(errors), tuple(skipped))


# --------------------------------------------------------------------------- writing


def check_file_name(name: str) -> str:
    """A bare `*.json` file name: no directories, no traversal, no control characters."""
    if not name or name in (".", "..") or ".." in name or not _SAFE_NAME.match(name):
        raise CredentialFileError(f"invalid credential file name: {name!r}")
    if not name.endswith(".json"):
        raise CredentialFileError(f"credential file name must end with .json: {name!r}")
    return name


def credential_path(auth_dir: Path, name: str) -> Path:
    """The path of `name` inside `auth_dir`, refusing anything that would land elsewhere."""
    path = auth_dir / check_file_name(name)
    if path.resolve().parent != auth_dir.resolve():
        raise CredentialFileError(f"invalid credential file name: {name!r}")
    return path


def encode_credential(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(data), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_credential_file(path: Path, data: Mapping[str, Any]) -> bool:
    """Atomically replace `path` with `data` as JSON, mode 0600. Returns False when unchanged.

    Blocking (fsync): call it through `asyncio.to_thread` from the event loop.
    """
    check_file_name(path.name)
    try:
        if json.loads(path.read_bytes()) == dict(data):
            if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
                os.chmod(path, FILE_MODE)
            return False
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, encode_credential(data), mode=FILE_MODE)
    return True


def now_utc() -> datetime:
    return datetime.now(UTC)


def codex_auth_claims(id_token: str) -> dict[str, Any]:
    """The `https://api.openai.com/auth` claims of a Codex id_token (unverified: it is our own file)."""
    from cliproxy.credentials.jwt import decode_claims

    claims = decode_claims(id_token)
    auth = claims.get("https://api.openai.com/auth")
    return dict(auth) if isinstance(auth, Mapping) else {}
