"""Credential files: what one auth-dir JSON file says, parsed into an immutable `AuthFileCredential`.

A CLIProxyAPI auth-dir must load unchanged: legacy kebab-case keys are accepted, and expiry and
last-refresh times are found under any of the names the Go project and its ancestors used. What
a file of one `type` must contain is that provider's business (`FileRules`, from the provider
registry); everything here is shared by every type. Nothing here touches the disk: reading and
writing is `credentials.store`'s job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from pydantic import ValidationError

from cliproxy.config.sections import MAX_WEIGHT, ScopedErrorRule, check_headers

log = logging.getLogger(__name__)

FILE_MODE = 0o600
# Types CLIProxyAPI itself ignores; skipped with a gentler message than an unknown type.
IGNORED_TYPES = frozenset({"", "gemini", "gemini-cli"})
EXPIRY_KEYS = ("expired", "expire", "expires_at", "expiresAt", "expiry", "expires")
LAST_REFRESH_KEYS = ("last_refresh", "lastRefresh", "last_refreshed_at", "lastRefreshedAt")
# Legacy kebab-case names, rewritten to the snake_case CLIProxyAPI writes today.
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
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9@._+-]+")


class CredentialFileError(ValueError):
    """A credential file that cannot be used; the message names the field and what is wrong."""


class SkippedFile(Exception):
    """A readable file of a type we do not serve (reported, never an error)."""


class FileRules(Protocol):
    """What one provider demands of its files (its registry entry provides both)."""

    @property
    def check(self) -> Callable[[dict[str, Any]], None]:
        """Raise `CredentialFileError` when required fields are missing; may fill derived fields."""
        ...

    @property
    def facts(self) -> Callable[[Mapping[str, Any]], Mapping[str, str]]:
        """Derived, display-only facts: `email`, `account_id`, `plan_type`, `project_id`, `location`."""
        ...


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
    request_scoped_errors: tuple[ScopedErrorRule, ...] = ()  # before the channel's own rules
    disable_cooling: bool | None = None
    websockets: bool = False
    refresh_interval_seconds: int | None = None
    expires_at: datetime | None = None
    last_refresh: datetime | None = None
    insecure_mode: bool = False
    facts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

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
        """The upstream account this login belongs to, when its provider knows one."""
        return self.facts.get("account_id", "")

    @property
    def plan_type(self) -> str:
        return self.facts.get("plan_type", "")

    @property
    def project_id(self) -> str:
        return self.facts.get("project_id", "")

    @property
    def location(self) -> str:
        return self.facts.get("location", "")

    def metadata_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of the file contents, to edit and write back."""
        copied: dict[str, Any] = json.loads(json.dumps(dict(self.metadata)))
        return copied


# --------------------------------------------------------------------------- small parsers


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _nested(data: Mapping[str, Any], *keys: str) -> Any:
    current: Any = data
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def text_field(data: Mapping[str, Any], key: str) -> str:
    """`data[key]` trimmed, or '' when it is not a string."""
    return _str(data.get(key))


def auth_index_for(cred_type: str, path: Path) -> str:
    """Stable index the management UI joins on: sha256("<type>:<absolute path>")[:16]."""
    return hashlib.sha256(f"{cred_type}:{path.absolute()}".encode()).hexdigest()[:16]


def now_utc() -> datetime:
    return datetime.now(UTC)


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


def _scoped_rules(value: Any) -> tuple[ScopedErrorRule, ...]:
    """`request_scoped_errors`: validated by the same model as the config's rules."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CredentialFileError("request_scoped_errors: expected a list of {status, match, action}")
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
    try:
        clean = check_headers({str(k): str(v) for k, v in value.items()})
    except ValueError as exc:
        raise CredentialFileError(f"headers: {exc}") from None
    return MappingProxyType(clean)


def _prefix(value: Any) -> str:
    text = _str(value).strip("/")
    return "" if "/" in text else text


# --------------------------------------------------------------------------- one file


def credential_type(data: Mapping[str, Any]) -> str:
    return _str(data.get("type")).lower()


def credential_from_metadata(
    data: Mapping[str, Any],
    *,
    path: Path,
    auth_dir: Path,
    rules: Mapping[str, FileRules],
    sha256: str = "",
    insecure_mode: bool = False,
) -> AuthFileCredential:
    """Validate one parsed file against its type's `rules` and build its credential.

    Raises `CredentialFileError` naming the field, or the type when no provider serves it.
    """
    meta = canonical_metadata(data)
    cred_type = credential_type(meta)
    kind = rules.get(cred_type)
    if kind is None:
        raise CredentialFileError(f"unsupported credential type {cred_type!r}")
    kind.check(meta)
    facts = dict(kind.facts(meta))
    weight = _int_field(meta, "weight")
    if weight is not None and not 0 <= weight <= MAX_WEIGHT:
        raise CredentialFileError(f"weight: must be between 0 and {MAX_WEIGHT:,}")
    try:
        priority = _int_field(meta, "priority") or 0
    except CredentialFileError:  # as CLIProxyAPI does: a bad priority is ignored, not fatal
        log.warning("%s: ignoring a priority that is not a number", path.name)
        priority = 0
    email = _str(meta.get("email")) or facts.get("email", "")
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
        facts=MappingProxyType(facts),
    )


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The bytes of a credential file as a JSON object; raises `CredentialFileError` saying why not."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CredentialFileError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialFileError("not a JSON object")
    return data


def encode_credential(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(data), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- names


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


def filename_part(text: str) -> str:
    """Make an email/project/plan safe inside a file name (no separators, no `..`)."""
    cleaned = _UNSAFE_FILENAME_CHARS.sub("_", text.strip())
    while ".." in cleaned:
        cleaned = cleaned.replace("..", ".")
    return cleaned.strip(".") or "unknown"
