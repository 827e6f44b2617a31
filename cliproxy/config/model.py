"""The typed, immutable config schema: CLIProxyAPI's YAML names and defaults.

Every model is frozen. YAML keys are kebab-case (`base-url`); Python names are snake_case. Keys
that CLIProxyAPI knows but cliproxy does not act on are accepted (`CLIPROXYAPI_KEYS`) and reported
when set (`compat_only`); anything else is kept in `model_extra` and reported as an unknown key by
the loader, never dropped.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ValidationError as CoreValidationError

from cliproxy.accounts.model import Role
from cliproxy.config.compat_only import top_level_compat_keys
from cliproxy.config.sections import (
    ClaudeKey,
    CodexKey,
    GeminiKey,
    OAuthAlias,
    OpenAICompatibility,
    ProviderKey,
    ScopedErrorRule,
    Section,
    UpstreamTimeouts,
    VertexKey,
    XaiKey,
    check_url,
    relocated,
    undeclared_api_key_sections,
)
from cliproxy.config.sections import check_proxy_url as check_proxy_url

TEMPLATE_API_KEYS = frozenset({"your-api-key-1", "your-api-key-2", "your-api-key-3"})

# Top-level keys of CLIProxyAPI configs that the schema does not declare but the loader accepts:
# the compatibility-only ones (reported when set, see `compat_only`) and one read from `model_extra`.
CLIPROXYAPI_KEYS = top_level_compat_keys() | {"redis-usage-queue-retention-seconds"}


def parse_expiry(value: str) -> float | None:
    """`expires` as a UTC epoch: an ISO date means "valid through that day (UTC)"; a datetime
    without a zone is UTC. '' → None (never expires). Raises ValueError with a usable message."""
    import datetime as dt

    text = value.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
            return end.timestamp()
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date or time: {value!r} (use 2026-12-31 or 2026-12-31T18:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class ClientKey(Section):
    """A client key as an object (per-key scopes and limits); plain strings keep their old meaning.

    `models` holds glob patterns (`claude-*`, case-insensitive) over the ids `/v1/models` lists;
    empty means every model. Limits left unset do not apply. `max-budget-usd` is counted per
    `budget-period` (UTC calendar day, ISO week, month) from litellm's bundled price data.
    """

    name: str = ""
    key: str = ""
    key_sha256: str = ""
    models: tuple[str, ...] = ()
    disabled: bool = False
    expires: str = ""
    max_requests_per_minute: int | None = Field(default=None, ge=1)
    max_tokens_per_day: int | None = Field(default=None, ge=0)
    max_budget_usd: float | None = Field(default=None, ge=0)
    budget_period: Literal["day", "week", "month"] = "month"
    max_concurrent: int | None = Field(default=None, ge=1)
    allow_unknown_price: bool = False

    @field_validator("expires", mode="before")
    @classmethod
    def _valid_expiry(cls, value: Any) -> Any:
        import datetime as dt

        if value is None:
            return ""
        if isinstance(value, dt.datetime | dt.date):  # YAML parses unquoted dates itself
            value = value.isoformat()
        if isinstance(value, str):
            parse_expiry(value)
        return value

    @field_validator("models")
    @classmethod
    def _clean_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.strip() for p in value if p.strip()))

    @model_validator(mode="after")
    def _has_secret(self) -> ClientKey:
        if not self.key and not self.key_sha256:
            raise ValueError("a client key object needs `key` or `key-sha256`")
        if self.key_sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", self.key_sha256):
            raise ValueError("key-sha256 must be 64 hex characters")
        return self

    @property
    def expires_at(self) -> float | None:
        return parse_expiry(self.expires)

    @property
    def has_limits(self) -> bool:
        """Anything to check per request beyond the front door (model scope, rates, allowances)."""
        return bool(self.models) or any(
            v is not None
            for v in (
                self.max_requests_per_minute,
                self.max_tokens_per_day,
                self.max_budget_usd,
                self.max_concurrent,
            )
        )


class TLS(Section):
    enable: bool = False
    cert: str = ""
    key: str = ""


class RemoteManagement(Section):
    allow_remote: bool = False
    secret_key: str = ""
    disable_control_panel: bool = False
    disable_auto_update_panel: bool = False
    panel_github_repository: str = ""
    viewer_keys: tuple[str, ...] = ()


STRATEGY_SPELLINGS: dict[str, str] = {
    "": "round-robin",
    "round-robin": "round-robin",
    "roundrobin": "round-robin",
    "rr": "round-robin",
    "weighted-round-robin": "weighted-round-robin",
    "weightedroundrobin": "weighted-round-robin",
    "wrr": "weighted-round-robin",
    "fill-first": "fill-first",
    "fillfirst": "fill-first",
    "ff": "fill-first",
}


class Routing(Section):
    strategy: str = "round-robin"
    session_affinity: bool = False
    session_affinity_ttl: str = "1h"
    session_affinity_subagents: bool = True

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        canonical = STRATEGY_SPELLINGS.get(value.strip().lower())
        if canonical is None:
            raise ValueError(f"unknown strategy {value!r} (round-robin, weighted-round-robin, fill-first)")
        return canonical

    @field_validator("session_affinity_ttl")
    @classmethod
    def _valid_ttl(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("must be longer than zero")
        return value

    @property
    def session_affinity_ttl_seconds(self) -> float:
        return parse_duration(self.session_affinity_ttl)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str) -> float:
    """A Go duration (`1h`, `30m`, `1h30m`, `90s`, `500ms`) in seconds; a bare number is seconds."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        pos = match.end()
        total += float(match.group(1)) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[match.group(2)]
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {value!r} (use 1h, 30m or 90s)")
    return total


class Streaming(Section):
    keepalive_seconds: float = 0  # fractions allowed
    bootstrap_retries: int = 0


class ClaudeHeaderDefaults(Section):
    """What a cloaked request says about the Claude Code it poses as ('' keeps the built-in value)."""

    user_agent: str = ""
    package_version: str = ""
    runtime_version: str = ""
    os: str = ""
    arch: str = ""
    timeout: str = ""
    timezone: str = ""  # the date in the cloaked prompt; '' = this machine's zone
    stabilize_device_profile: bool = False

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class ClaudeCode(Section):
    disable_cloaking_model_list: bool = False  # list real model ids to Claude Code


class Metrics(Section):
    """`GET /metrics` (cliproxy's own): Prometheus text, open to loopback peers.

    From any other address it needs the management secret as a Bearer token, unless
    `allow-remote` is true. `max-label-values` caps the distinct `model` and `client_key` label
    values each; later newcomers are counted under `other`.
    """

    enabled: bool = True
    allow_remote: bool = False
    max_label_values: int = Field(default=100, ge=1)


class SSO(Section):
    """Single sign-on with any OpenID Connect provider (authorization code flow with PKCE).

    `allowed-domains` limits who may sign in by the domain of their verified email (empty: any);
    the first sign-in of an allowed email creates the user with `default-role` and `default-team`.
    """

    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    allowed_domains: tuple[str, ...] = ()
    default_role: Role = "user"
    default_team: str = ""

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("allowed_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.strip().lower().lstrip("@") for d in value if d.strip()))

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


class SharedState(Section):
    """`shared-state` (cliproxy's own): the counters, cooldowns and locks several processes share.

    With `redis-url` empty each process keeps its state to itself, as before. `on-redis-down` says
    what keys with limits get while Redis cannot be reached: `fail-closed` refuses them (503),
    `fail-open` serves them with in-process counting. Every Redis key starts with `key-prefix`.
    """

    redis_url: str = ""
    key_prefix: str = "cliproxy:"
    on_redis_down: Literal["fail-closed", "fail-open"] = "fail-closed"

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis-url must start with redis://, rediss:// or unix://")
        if "password" in parse_qs(urlsplit(value).query):  # it would escape masking in logs and answers
            raise ValueError("redis-url: put the password before the host (redis://:PASSWORD@host), not in the query")
        return value

    @property
    def password(self) -> str:
        """The password inside `redis-url` as written (still percent-encoded), or ''."""
        return redis_password(self.redis_url)

    @property
    def masked_url(self) -> str:
        """`redis-url` fit for logs and management answers: its password replaced by `***`."""
        secret = self.password
        return self.redis_url.replace(f":{secret}@", ":***@", 1) if secret else self.redis_url


def redis_password(url: str) -> str:
    if "@" not in url:
        return ""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


class Config(Section):
    """The whole config file. Defaults are CLIProxyAPI's, so its config files load unchanged."""

    host: str = ""
    port: int = Field(default=8317, ge=0, le=65535)
    tls: TLS = TLS()
    remote_management: RemoteManagement = RemoteManagement()
    auth_dir: str = "~/.cli-proxy-api"
    api_keys: tuple[str | ClientKey, ...] = ()
    debug: bool = False
    usage_statistics_enabled: bool = False
    proxy_url: str = ""
    force_model_prefix: bool = False
    passthrough_headers: bool = False
    request_retry: int = 0
    max_retry_credentials: int = 0
    max_retry_interval: int = 0
    disable_cooling: bool = False
    transient_error_cooldown_seconds: int = 0
    max_cooldown_seconds: float = Field(default=43_200, gt=0)  # cliproxy's own: no cooldown lasts longer
    upstream_timeouts: UpstreamTimeouts = UpstreamTimeouts()  # cliproxy's own
    request_log: bool = False
    log_format: Literal["text", "json"] = "text"
    log_requests: bool = True  # cliproxy's own: one summary line per API request (INFO, `cliproxy.requests`)
    logging_to_file: bool = False
    logs_dir: str = ""  # cliproxy's own: where `logging-to-file` writes ('' = the default order, see log_files.py)
    logs_max_total_size_mb: int = 0
    error_logs_max_files: int = 10
    ws_auth: bool = True
    trusted_proxies: tuple[str, ...] = ()
    usage_db: str = ""
    routing: Routing = Routing()
    streaming: Streaming = Streaming()
    nonstream_keepalive_interval: float = 0  # seconds; fractions allowed, 0 or less: off
    gemini_api_key: tuple[GeminiKey, ...] = ()
    claude_api_key: tuple[ClaudeKey, ...] = ()
    codex_api_key: tuple[CodexKey, ...] = ()
    vertex_api_key: tuple[VertexKey, ...] = ()
    xai_api_key: tuple[XaiKey, ...] = ()
    openai_compatibility: tuple[OpenAICompatibility, ...] = ()
    oauth_excluded_models: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    oauth_model_alias: dict[str, tuple[OAuthAlias, ...]] = Field(default_factory=dict)
    oauth_request_scoped_errors: dict[str, tuple[ScopedErrorRule, ...]] = Field(default_factory=dict)
    payload: dict[str, Any] = Field(default_factory=dict)
    disable_claude_cloak_mode: bool = False  # Claude cloaking defaults to `never` instead of `auto`
    claude_header_defaults: ClaudeHeaderDefaults = ClaudeHeaderDefaults()
    claude_code: ClaudeCode = ClaudeCode()
    metrics: Metrics = Metrics()  # cliproxy's own
    # Users and teams (cliproxy's own): where their store lives ('' = beside the usage database,
    # `off` = no users), how long invitations, panel sessions and CLI login tokens last.
    accounts_db: str = ""
    sso: SSO = SSO()
    cli_token_expiration_hours: float = Field(default=24, gt=0)
    invitation_expiration_days: float = Field(default=7, gt=0)
    session_expiration_hours: float = Field(default=12, gt=0)
    password_min_length: int = Field(default=12, ge=8, le=128)
    shared_state: SharedState = SharedState()  # cliproxy's own: Redis for state shared between processes
    workers: int = Field(default=1, ge=1)  # cliproxy's own: processes serving the same port

    @model_validator(mode="wrap")
    @classmethod
    def _api_key_sections(cls, data: Any, handler: Any) -> Any:
        """Validate every `*-api-key` section the schema does not declare as a list of `ProviderKey`.

        They are kept under their YAML name (`model_extra`), so `GET /config` shows them as
        written; errors name the YAML path like any other (`xai-api-key[0].base-url: …`).
        """
        declared = {info.alias or name for name, info in cls.model_fields.items()}
        sections, errors = undeclared_api_key_sections(data, declared) if isinstance(data, dict) else ({}, [])
        try:
            config = handler(data)
        except ValidationError as exc:
            if not errors:
                raise
            raise CoreValidationError.from_exception_data(cls.__name__, [*relocated(exc), *errors]) from None
        if errors:
            raise CoreValidationError.from_exception_data(cls.__name__, errors)
        if sections and config.__pydantic_extra__ is not None:
            config.__pydantic_extra__.update(sections)
        return config

    def api_key_section(self, section: str) -> tuple[ProviderKey, ...]:
        """The entries of the API-key section named `section` in YAML (declared or not)."""
        name = section.replace("-", "_")
        if name in type(self).model_fields:
            entries: tuple[ProviderKey, ...] = getattr(self, name)
            return entries
        value = (self.model_extra or {}).get(section, ())
        return value if isinstance(value, tuple) else ()

    @field_validator("proxy_url")
    @classmethod
    def _valid_proxy_url(cls, value: str) -> str:
        return check_proxy_url(value)

    @field_validator("usage_db", "accounts_db", mode="before")
    @classmethod
    def _db_switch(cls, value: Any) -> Any:
        """YAML reads an unquoted `usage-db: off` (or `accounts-db: off`) as false: that means off,
        not a type error."""
        return "off" if value is False else value

    @field_validator("logs_max_total_size_mb")
    @classmethod
    def _no_negative_size(cls, value: int) -> int:
        return max(value, 0)  # as CLIProxyAPI's management toggle stores it

    @field_validator("error_logs_max_files")
    @classmethod
    def _default_file_count(cls, value: int) -> int:
        return 10 if value < 0 else value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _clean_keys(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            return value
        out: list[Any] = []
        seen: set[str] = set()
        for item in value:
            if isinstance(item, str):
                item = item.strip()
                if not item or item in seen:
                    continue
                seen.add(item)
            out.append(item)
        return out

    @field_validator("api_keys")
    @classmethod
    def _unique_names(cls, value: tuple[str | ClientKey, ...]) -> tuple[str | ClientKey, ...]:
        """Usage, budgets and the keys API find a key object by its name, so names must be unique."""
        seen: set[str] = set()
        for item in value:
            if isinstance(item, ClientKey) and item.name:
                if item.name in seen:
                    raise ValueError(f"two client keys are named {item.name!r} (names must be unique)")
                seen.add(item.name)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @model_validator(mode="after")
    def _workers_share_state(self) -> Config:
        """Workers that each counted alone would multiply every limit by their number."""
        if self.workers > 1 and not self.shared_state.redis_url:
            raise ValueError(
                f"workers is {self.workers} but shared-state.redis-url is not set; "
                "several workers need Redis to share limits, cooldowns and refresh locks"
            )
        return self

    @model_validator(mode="after")
    def _tls_complete(self) -> Config:
        if self.tls.enable and not (self.tls.cert and self.tls.key):
            raise ValueError("tls.enable is true but tls.cert and tls.key are both required")
        return self

    @property
    def uses_template_keys(self) -> bool:
        """True while `api-keys` still holds CLIProxyAPI's example values (safe mode)."""
        return any(isinstance(k, str) and k in TEMPLATE_API_KEYS for k in self.api_keys)
