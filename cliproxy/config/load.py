"""YAML → `Config`: validation errors that name the YAML path, warnings for unknown keys.

Loading is synchronous and small; it runs before the server starts, or in a worker thread on
reload. A plaintext management `secret-key` is bcrypt-hashed at load and written back into the
file (comments kept, atomic replace), as CLIProxyAPI does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cliproxy.config.compat_only import compat_only_warnings
from cliproxy.config.model import CLIPROXYAPI_KEYS, Config
from cliproxy.config.sections import API_KEY_SECTION_SUFFIX
from cliproxy.config.write import atomic_write_text, set_yaml_value

log = logging.getLogger(__name__)

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class ConfigError(Exception):
    """The config cannot be used; `errors` are lines like `claude-api-key[1].base-url: not a URL`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path
    warnings: tuple[str, ...] = ()
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    compat_only: tuple[str, ...] = ()  # keys set that have no effect in cliproxy (`compat_only`)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('claude-api-key', 1, 'base-url') → 'claude-api-key[1].base-url'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "constrained-str", "ClientKey", "function-after[_has_secret(), ClientKey]"):
            continue  # union-branch names pydantic adds to locations
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _validation_messages(exc: ValidationError) -> list[str]:
    seen: dict[str, None] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = str(err["msg"]).removeprefix("Value error, ")
        seen[f"{format_loc(loc)}: {msg}"] = None
    return list(seen)


def _unknown_keys(model: BaseModel, path: str, out: list[str]) -> None:
    """Walk the validated tree; every `model_extra` key is a key we do not know."""
    for key in model.model_extra or {}:
        if not path and (key in CLIPROXYAPI_KEYS or key.endswith(API_KEY_SECTION_SUFFIX)):
            continue  # (a `*-api-key` section is validated by `Config` as provider keys)
        out.append(f"{path + '.' if path else ''}{key}: unknown key (ignored)")
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        child = f"{path + '.' if path else ''}{info.alias or name}"
        if isinstance(value, BaseModel):
            _unknown_keys(value, child, out)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    _unknown_keys(item, f"{child}[{i}]", out)


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """The problem and its line/column, without the snippet of file text PyYAML quotes (it may hold a key)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        parts = [p for p in (exc.context, exc.problem) if p]
        return f"{'; '.join(parts) or 'syntax error'}{where}"
    return type(exc).__name__


def parse_config_text(text: str, *, source: str = "config") -> tuple[Config, list[str], dict[str, Any]]:
    """Parse and validate YAML text; raise `ConfigError` with path-named messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {yaml_error_text(exc)}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: the top level must be a mapping"])
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_validation_messages(exc)) from None
    warnings: list[str] = []
    _unknown_keys(config, "", warnings)
    return config, warnings, raw


def management_password_from_env() -> str:
    """`MANAGEMENT_PASSWORD`, trimmed; '' when unset."""
    return os.environ.get("MANAGEMENT_PASSWORD", "").strip()


def hash_secret(secret: str) -> str:
    import bcrypt

    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt()).decode()


def load_config(path: Path) -> LoadedConfig:
    """Read, validate and (if needed) rewrite the secret hash. Raises `ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    config, warnings, raw = parse_config_text(text, source=str(path))
    rm = config.remote_management
    secret = rm.secret_key
    viewers = rm.viewer_keys
    if (secret and not secret.startswith(BCRYPT_PREFIXES)) or any(not v.startswith(BCRYPT_PREFIXES) for v in viewers):
        if secret and not secret.startswith(BCRYPT_PREFIXES):
            secret = hash_secret(secret)
            text = set_yaml_value(text, ("remote-management", "secret-key"), secret)
        if any(not v.startswith(BCRYPT_PREFIXES) for v in viewers):
            viewers = tuple(v if v.startswith(BCRYPT_PREFIXES) else hash_secret(v) for v in viewers)
            text = set_yaml_value(text, ("remote-management", "viewer-keys"), list(viewers))
        try:
            atomic_write_text(path, text)
            log.info("management keys hashed with bcrypt and written back to %s", path)
        except OSError as exc:  # best effort, as upstream: keep serving with the hashes in memory
            log.warning("could not write the hashed management keys back to %s: %s", path, exc.strerror)
        config = config.model_copy(
            update={"remote_management": rm.model_copy(update={"secret_key": secret, "viewer_keys": viewers})}
        )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LoadedConfig(
        config=config,
        path=path,
        warnings=tuple(warnings),
        sha256=digest,
        raw=raw,
        compat_only=tuple(compat_only_warnings(raw)),
    )


DEFAULT_CONFIG_TEMPLATE = """\
# cliproxy configuration, generated on first start.
# Every supported key is described in config.example.yaml.

# Listen on the loopback interface only. Use "" to listen on every interface.
host: "127.0.0.1"
port: 8317

# Credential files for OAuth logins (cliproxy login claude|codex) live here.
auth-dir: "./auths"

# Clients must present one of these keys (Authorization: Bearer, x-api-key, x-goog-api-key).
api-keys:
  - "{client_key}"

remote-management:
  # Management API only from this machine. The secret below is a bcrypt hash.
  allow-remote: false
  secret-key: "{secret_hash}"

routing:
  strategy: "round-robin"

# Add your upstream credentials below, for example:
# claude-api-key:
#   - api-key: "sk-ant-..."
# openai-compatibility:
#   - name: "openrouter"
#     base-url: "https://openrouter.ai/api/v1"
#     api-key-entries:
#       - api-key: "sk-or-..."
"""


@dataclass(frozen=True)
class GeneratedSecrets:
    client_key: str
    management_secret: str


def generate_default_config(path: Path) -> GeneratedSecrets:
    """Write a safe first config (loopback, random client key, hashed management secret)."""
    client_key = "sk-" + secrets.token_urlsafe(32)
    management_secret = secrets.token_urlsafe(24)
    text = DEFAULT_CONFIG_TEMPLATE.format(client_key=client_key, secret_hash=hash_secret(management_secret))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text, mode=0o600)
    return GeneratedSecrets(client_key, management_secret)
