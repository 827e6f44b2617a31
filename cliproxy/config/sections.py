"""The provider sections of the config: API-key entries, `openai-compatibility`, OAuth channel maps.

Also the base of every config block (`Section`). As in CLIProxyAPI, every `*-api-key` section
shares the fields of `ProviderKey`; a provider with fields of its own has a subclass here and a
typed field on `Config`, and any other `*-api-key` section is validated as plain `ProviderKey`s
(`undeclared_api_key_sections`), so a new API-key provider needs no change in this package.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_WEIGHT = 1_000_000
API_KEY_SECTION_SUFFIX = "-api-key"


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class Section(BaseModel):
    """Base of every config block: frozen, kebab-case aliases, unknown keys kept for warnings."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=_kebab,
        populate_by_name=True,
        extra="allow",
        str_strip_whitespace=True,
    )


def check_url(value: str) -> str:
    """Accept '' or an absolute http(s) URL."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a URL: {value!r} (expected http:// or https://)")
    return value.rstrip("/")


def check_proxy_url(value: str) -> str:
    """Accept '', `direct`/`none`, or an http/https/socks5/socks5h URL."""
    if not value or value.lower() in ("direct", "none"):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.netloc:
        raise ValueError("not a proxy URL (expected http, https, socks5 or socks5h, or 'direct'/'none')")
    return value


def normalise_prefix(value: str) -> str:
    """Trim slashes at the ends; a prefix that still contains `/` is ignored, as in CLIProxyAPI."""
    value = value.strip().strip("/")
    return "" if "/" in value else value


class ThinkingSpec(Section):
    levels: tuple[str, ...] = ()


class ModelEntry(Section):
    """One `models:` entry: `name` is sent upstream, `alias` (or name) is what clients see."""

    name: str
    alias: str = ""
    display_name: str = ""
    max_context_length: int | None = None
    force_mapping: bool = False
    is_compat: bool = False
    thinking: ThinkingSpec | None = None
    image: bool = False
    input_modalities: tuple[str, ...] = ()
    output_modalities: tuple[str, ...] = ()

    @property
    def visible_id(self) -> str:
        return self.alias or self.name


class ScopedErrorRule(Section):
    status: int
    match: tuple[str, ...] = ()
    match_regexr: tuple[str, ...] = ()
    action: Literal["stop", "stop-and-cooldown", "continue", "continue-and-cooldown"] = "stop"

    @field_validator("match_regexr")
    @classmethod
    def _regexes_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:  # not a ValueError: pydantic would let it escape as a crash
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return value


# Headers that describe the message or the connection: the HTTP client writes them itself, and a
# second value would make the request ambiguous to every server and proxy on the way.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)


def check_headers(value: dict[str, str]) -> dict[str, str]:
    """Trimmed `headers:`; empty names or values dropped, message-framing headers refused."""
    cleaned = {k.strip(): str(v).strip() for k, v in value.items() if k.strip() and str(v).strip()}
    framing = sorted(name for name in cleaned if name.lower() in FRAMING_HEADERS)
    if framing:
        raise ValueError(f"{', '.join(framing)} cannot be set here: the proxy writes the message framing itself")
    return cleaned


class UpstreamTimeouts(Section):
    """Bounds on every upstream call; at the top level, or per provider entry (unset fields fall
    back to the top level, then to the defaults)."""

    connect_seconds: float | None = Field(default=None, gt=0)
    first_byte_seconds: float | None = Field(default=None, gt=0)  # the response head; a stream's first event
    idle_seconds: float | None = Field(default=None, gt=0)  # silence between two chunks of a started answer


class ProviderKey(Section):
    """One entry of an API-key section (`<provider>-api-key`): the fields every provider shares.

    As in CLIProxyAPI, every `*-api-key` section has these; a provider with fields of its own
    declares a subclass (`ClaudeKey`) and a typed field on `Config`. Any other `*-api-key` section
    is validated as a list of plain `ProviderKey`s, so a new API-key provider needs no change here;
    its own extra keys stay in each entry's `model_extra`.
    """

    api_key: str = ""
    base_url: str = ""
    prefix: str = ""
    priority: int = 0
    weight: int | None = None
    proxy_url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    models: tuple[ModelEntry, ...] = ()
    excluded_models: tuple[str, ...] = ()
    disable_cooling: bool | None = None
    request_retry: int | None = None
    request_scoped_errors: tuple[ScopedErrorRule, ...] = ()
    disabled: bool = False
    upstream_timeouts: UpstreamTimeouts | None = None

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("proxy_url")
    @classmethod
    def _valid_proxy_url(cls, value: str) -> str:
        return check_proxy_url(value)

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        return normalise_prefix(value)

    @field_validator("weight")
    @classmethod
    def _weight_in_range(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_WEIGHT:
            raise ValueError(f"must be at most {MAX_WEIGHT:,}")
        return value

    @field_validator("excluded_models")
    @classmethod
    def _lower_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for pattern in value:
            pattern = pattern.strip().lower()
            if pattern:
                seen[pattern] = None
        return tuple(seen)

    @field_validator("headers")
    @classmethod
    def _clean_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)


class GeminiKey(ProviderKey):
    pass


class VertexKey(ProviderKey):
    pass


class ClaudeCloak(Section):
    mode: Literal["auto", "always", "never"] = "auto"
    strict_mode: bool = False
    relaxed_system_prompt: bool = False
    sensitive_words: tuple[str, ...] = ()
    cache_user_id: bool = False


class ClaudeKey(ProviderKey):
    cloak: ClaudeCloak | None = None
    fingerprint_profile: str = ""
    rebuild_mid_system_message: bool = False
    experimental_cch_signing: bool = False


class CodexKey(ProviderKey):
    websockets: bool = False
    alpha_search: bool = False


class XaiKey(ProviderKey):
    websockets: bool = False  # bridge Responses WebSockets to xAI's own


class CompatKeyEntry(Section):
    api_key: str = ""
    weight: int | None = None
    proxy_url: str = ""

    @field_validator("proxy_url")
    @classmethod
    def _valid_proxy_url(cls, value: str) -> str:
        return check_proxy_url(value)

    @field_validator("weight")
    @classmethod
    def _weight_in_range(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_WEIGHT:
            raise ValueError(f"must be at most {MAX_WEIGHT:,}")
        return value


class OpenAICompatibility(Section):
    """One OpenAI-compatible provider; each `api-key-entries` item becomes one credential."""

    name: str = ""
    disabled: bool = False
    prefix: str = ""
    base_url: str = ""
    priority: int = 0
    headers: dict[str, str] = Field(default_factory=dict)
    api_key_entries: tuple[CompatKeyEntry, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    excluded_models: tuple[str, ...] = ()
    support_prompt_cache_key: bool = False
    disable_cooling: bool | None = None
    request_retry: int | None = None
    request_scoped_errors: tuple[ScopedErrorRule, ...] = ()
    upstream_timeouts: UpstreamTimeouts | None = None

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        return normalise_prefix(value)

    @field_validator("headers")
    @classmethod
    def _clean_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)


class OAuthAlias(Section):
    name: str
    alias: str
    fork: bool = False
    display_name: str = ""
    force_mapping: bool = False


_SECTIONS: TypeAdapter[tuple[ProviderKey, ...]] = TypeAdapter(tuple[ProviderKey, ...])


def relocated(exc: ValidationError, *prefix: str) -> list[InitErrorDetails]:
    """`exc`'s errors with `prefix` in front of each location, ready to raise again."""
    out: list[InitErrorDetails] = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        error: Any = (
            PydanticCustomError(err["type"], err["msg"], ctx) if ctx or err["type"] == "value_error" else err["type"]
        )
        out.append(InitErrorDetails(type=error, loc=(*prefix, *err["loc"]), input=err.get("input")))
    return out


def undeclared_api_key_sections(
    data: Mapping[str, Any], declared: Collection[str]
) -> tuple[dict[str, tuple[ProviderKey, ...]], list[InitErrorDetails]]:
    """Every `*-api-key` section of `data` not in `declared`, validated as `ProviderKey` lists, and the errors."""
    sections: dict[str, tuple[ProviderKey, ...]] = {}
    errors: list[InitErrorDetails] = []
    for key, value in data.items():
        if isinstance(key, str) and key.endswith(API_KEY_SECTION_SUFFIX) and key not in declared:
            try:
                sections[key] = _SECTIONS.validate_python(() if value is None else value)
            except ValidationError as exc:
                errors.extend(relocated(exc, key))
    return sections, errors
