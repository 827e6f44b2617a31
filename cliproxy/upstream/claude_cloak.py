"""Claude cloaking: a request from any client, made to look like Claude Code's, as CLIProxyAPI does.

A Claude Pro/Max subscription (an OAuth credential) only serves requests shaped like Claude Code's.
For every request that does not come from Claude Code itself, `ClaudeCloak` rewrites the body
(`claude_prompt`: Claude Code's system-prompt opening, the caller's system text moved, the date
reminder, a `metadata.user_id` in Claude Code's format carrying the session, sensitive words) and
replaces the headers by the set Claude Code sends (user agent, `x-app`, the beta flags, the
Stainless headers; `claude-header-defaults` changes what they say). Claude Code's own requests are
recognised by its headers and its `metadata.user_id` and pass untouched, byte for byte.

When: `cloak.mode` (`claude-api-key[].cloak`, or the auth file's `cloak_mode`) `always` cloaks every
other client, `never` none, `auto` (the default; `disable-claude-cloak-mode` makes `never` the
default) cloaks for OAuth credentials, API keys with `fingerprint-profile: claude-code-cli`, and
API keys whose entry has a `cloak:` block at all. Auth files carry the settings as CLIProxyAPI
writes them: strings (`"cloak_strict_mode": "true"`, `"cloak_sensitive_words": "a, b"`).

Cloaked requests of OAuth credentials (and of API keys with `experimental-cch-signing`, or the
profile on api.anthropic.com) carry Claude Code's body signature (`claude_signing`). Unlike
CLIProxyAPI, Claude Code of any version is recognised (a version pinned to a baseline would cloak a
newer genuine Claude Code), and its own requests are not re-signed: they pass as they came.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cliproxy import jsonio
from cliproxy.config.model import ClaudeHeaderDefaults, Config
from cliproxy.config.sections import ProviderKey
from cliproxy.translate import Dialect
from cliproxy.upstream import claude_prompt, claude_signing
from cliproxy.upstream.base import OutgoingRequest, host_of

CLAUDE_CODE_BETA = "claude-code-20250219"
OAUTH_BETA = "oauth-2025-04-20"
MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"
CLI_PROFILE = "claude-code-cli"
ENTRYPOINTS = frozenset({"cli", "sdk-cli", "claude-vscode"})  # Claude Code itself, not an SDK built on it
_USER_AGENT = re.compile(r"claude-cli/(\d+\.\d+\.\d+) \(external, ([a-z0-9-]+)(?:, agent-sdk/[0-9.]+)?\)")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# Caller betas kept on api.anthropic.com (anything else the API would refuse for a subscription).
KNOWN_CALLER_BETAS = frozenset(
    {
        "context-1m-2025-08-07",
        "structured-outputs-2025-12-15",
        "fast-mode-2026-02-01",
        "server-side-fallback-2026-06-01",
        "fallback-credit-2026-06-01",
    }
)
# The Claude Code these requests pose as, from its recorded traffic; `claude-header-defaults` overrides.
BUILTIN_HEADERS = {
    "user-agent": "claude-cli/2.1.330 (external, cli)",
    "package-version": "0.128.0",
    "runtime-version": "v26.12.1",
    "os": "Linux",
    "arch": "x64",
    "timeout": "600",
}


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):  # a plain dict: look the name up case-insensitively
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value or ""


def valid_user_id(value: Any) -> bool:
    """Claude Code's `metadata.user_id`: JSON text with a 64-hex device id, a UUID session and an
    account UUID that may be empty."""
    if not isinstance(value, str) or not value.startswith("{"):
        return False
    try:
        parsed = jsonio.loads(value)
    except ValueError:
        return False
    if not isinstance(parsed, dict):
        return False
    device, account, session = parsed.get("device_id"), parsed.get("account_uuid"), parsed.get("session_id")
    return (
        isinstance(device, str)
        and bool(_HEX64.fullmatch(device))
        and isinstance(session, str)
        and bool(_UUID.fullmatch(session))
        and (account == "" or (isinstance(account, str) and bool(_UUID.fullmatch(account))))
    )


def is_claude_code(headers: Mapping[str, str], body: Mapping[str, Any], *, action: str = "generate") -> bool:
    """Claude Code itself: `x-app: cli`, its user agent with a Claude Code entrypoint, the claude-code
    beta flag, and (except for counting) its `metadata.user_id`."""
    if _header(headers, "x-app") != "cli":
        return False
    match = _USER_AGENT.fullmatch(_header(headers, "User-Agent"))
    if match is None or match.group(2) not in ENTRYPOINTS:
        return False
    getall = getattr(headers, "getall", None)
    betas = ",".join(getall("anthropic-beta", ())) if getall is not None else _header(headers, "anthropic-beta")
    if CLAUDE_CODE_BETA not in (b.strip() for b in betas.split(",")):
        return False
    if action == "count_tokens":
        return True
    metadata = body.get("metadata")
    return isinstance(metadata, dict) and valid_user_id(metadata.get("user_id"))


def _truthy(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == "true"


@dataclass(frozen=True)
class CloakSettings:
    """How one credential cloaks; resolved once per snapshot."""

    mode: str = "auto"  # auto | always | never
    strict: bool = False
    sensitive_words: tuple[str, ...] = ()
    cache_user_id: bool = False
    cli_profile: bool = False  # OAuth, or `fingerprint-profile: claude-code-cli`: Claude Code's identity
    configured: bool = False  # a `cloak:` block or `cloak_*` fields exist
    rebuild_mid_system: bool = False
    sign: bool = False  # CCH-sign the body: always for OAuth, for API keys with `experimental-cch-signing`
    seed: str = ""  # what the credential's stable identity derives from
    account_uuid: str = ""
    defaults: ClaudeHeaderDefaults = field(default_factory=ClaudeHeaderDefaults)

    @property
    def cloaks_other_clients(self) -> bool:
        mode = self.mode.strip().lower()
        if mode == "never":
            return False
        return mode == "always" or self.cli_profile or self.configured


class ClaudeCloak:
    """The `RequestShaper` of Claude credentials that cloak (see the module docstring)."""

    __slots__ = ("settings",)

    def __init__(self, settings: CloakSettings) -> None:
        self.settings = settings

    def wants(
        self, client_dialect: Dialect, client_headers: Mapping[str, str], client_body: Mapping[str, Any], action: str
    ) -> bool:
        if client_dialect is Dialect.CLAUDE:
            return not is_claude_code(client_headers, client_body, action=action)
        return True

    def shape(self, request: OutgoingRequest) -> None:
        body = request.body
        settings = self.settings
        session = self.session_id(request.session)
        model = str(body.get("model") or "")
        system_turns = False
        if request.action == "generate":
            if settings.rebuild_mid_system:
                claude_prompt.rebuild_mid_system(body)
            texts = claude_prompt.system_texts(body, strict=settings.strict)
            signed = settings.sign or (settings.cli_profile and host_of(request.url) == "api.anthropic.com")
            body["system"] = [
                claude_prompt.billing_block(body, self.version, signed=signed),
                {"type": "text", "text": claude_prompt.IDENTITY, "cache_control": dict(claude_prompt.EPHEMERAL)},
            ]
            if not settings.strict:
                system_turns = claude_prompt.place_system_texts(body, texts, model)
            claude_prompt.add_date_reminder(body, self.today())
            body["metadata"] = {**(body.get("metadata") or {}), "user_id": self.user_id(session)}
            claude_prompt.obfuscate(body, settings.sensitive_words)
            thinking = body.get("thinking")
            thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
            for name in ("temperature", "top_p", *(("top_k",) if thinking_on else ())):
                body.pop(name, None)  # Claude Code sends none of them
            if thinking_on and "context_management" not in body and host_of(request.url) == "api.anthropic.com":
                body["context_management"] = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
            claude_prompt.limit_breakpoints(body)
            if signed:
                request.finish = lambda payload: claude_signing.sign(payload, body)
        self.set_headers(request, session, system_turns or not claude_prompt.is_legacy(model))

    # ------------------------------------------------------------------ identity

    @property
    def version(self) -> str:
        match = _USER_AGENT.fullmatch(self.header_value("user-agent"))
        return match.group(1) if match else "2.1.330"

    def header_value(self, name: str) -> str:
        d = self.settings.defaults
        own = {
            "user-agent": d.user_agent,
            "package-version": d.package_version,
            "runtime-version": d.runtime_version,
            "os": d.os,
            "arch": d.arch,
            "timeout": d.timeout,
        }[name]
        return own or BUILTIN_HEADERS[name]

    def today(self) -> str:
        zone = self.settings.defaults.timezone
        try:
            now = datetime.now(ZoneInfo(zone)) if zone else datetime.now().astimezone()
        except (KeyError, ValueError):  # an unknown zone name: this machine's date
            now = datetime.now().astimezone()
        return now.strftime("%Y-%m-%d")

    def session_id(self, session_key: str) -> str:
        """Claude Code's session UUID for this request: one per credential with `cache-user-id`,
        else one per conversation (the session key, or a UUID derived from it)."""
        if self.settings.cache_user_id:
            return str(uuid.uuid5(uuid.NAMESPACE_OID, "cliproxy\0claude\0session\0" + self.settings.seed))
        if _UUID.fullmatch(session_key):
            return session_key.lower()
        if session_key:
            return str(uuid.uuid5(uuid.NAMESPACE_OID, "cli-proxy-api\0claude\0agent-conversation\0" + session_key))
        return str(uuid.uuid4())

    def user_id(self, session: str) -> str:
        settings = self.settings
        if settings.cli_profile or settings.cache_user_id:  # one device per credential
            device = hashlib.sha256(("cliproxy-claude-device|" + settings.seed).encode()).hexdigest()
        else:
            device = os.urandom(32).hex()
        return jsonio.dumps(
            {"device_id": device, "account_uuid": settings.account_uuid, "session_id": session}
        ).decode()

    # ------------------------------------------------------------------ headers

    def betas(self, request: OutgoingRequest, non_legacy: bool) -> str:
        body = request.body
        flags = [CLAUDE_CODE_BETA]
        if self.settings.cli_profile:
            flags.append(OAUTH_BETA)
        if request.action == "count_tokens":
            flags += ["interleaved-thinking-2025-05-14", "context-management-2025-06-27", "token-counting-2024-11-01"]
        else:
            flags += ["interleaved-thinking-2025-05-14", "context-management-2025-06-27"]
            if non_legacy:
                flags.append(MID_CONVERSATION_SYSTEM_BETA)
            if body.get("tools"):
                flags.append("advanced-tool-use-2025-11-20")
            flags.append("effort-2025-11-24")
        first_party = host_of(request.url) == "api.anthropic.com"
        for flag in _header(request.client_headers, "anthropic-beta").split(","):
            flag = flag.strip()
            if flag and flag not in flags and (not first_party or flag in KNOWN_CALLER_BETAS):
                flags.append(flag)
        return ",".join(flags)

    def set_headers(self, request: OutgoingRequest, session: str, non_legacy: bool) -> None:
        """Claude Code's header set, in its order and spelling. The credential's auth and its other
        configured headers stay, and so do the caller's agent and request ids (as CLIProxyAPI
        copies them); every header of the set replaces the one of the same name."""
        cloaked = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": self.header_value("user-agent"),
            "X-Claude-Code-Session-Id": session,
            "X-Stainless-Arch": self.header_value("arch"),
            "X-Stainless-Lang": "js",
            "X-Stainless-OS": self.header_value("os"),
            "X-Stainless-Package-Version": self.header_value("package-version"),
            "X-Stainless-Retry-Count": "0",
            "X-Stainless-Runtime": "node",
            "X-Stainless-Runtime-Version": self.header_value("runtime-version"),
            "X-Stainless-Timeout": self.header_value("timeout"),
            "anthropic-beta": self.betas(request, non_legacy),
            "anthropic-dangerous-direct-browser-access": "true",
            "anthropic-version": "2023-06-01",
            "x-app": "cli",
            "Connection": "keep-alive",
            "Accept-Encoding": "identity" if request.stream else "gzip, deflate",
        }
        names = {name.lower() for name in cloaked}
        if request.action == "count_tokens":
            del cloaked["X-Stainless-Timeout"]
        kept = {k: v for k, v in request.headers.items() if k.lower() not in names}
        request.headers.clear()
        request.headers.update(cloaked)
        request.headers.update(kept)


# ---------------------------------------------------------------------- per credential


def _mode(config: Config, *own: str) -> str:
    mode = "never" if config.disable_claude_cloak_mode else "auto"
    for value in own:
        if value and value.strip():
            mode = value.strip().lower()
    return mode


def shaper_for_key(entry: ProviderKey, config: Config) -> ClaudeCloak | None:
    """The cloak of a `claude-api-key` entry: only with a `cloak:` block, `mode: always` or the
    Claude Code fingerprint profile."""
    cloak = getattr(entry, "cloak", None)
    profile = str(getattr(entry, "fingerprint_profile", "") or "").strip().lower() in (CLI_PROFILE, "oauth-cli")
    settings = CloakSettings(
        mode=_mode(config, cloak.mode if cloak is not None else ""),
        strict=bool(cloak is not None and cloak.strict_mode),
        sensitive_words=tuple(cloak.sensitive_words) if cloak is not None else (),
        cache_user_id=bool(cloak is not None and cloak.cache_user_id),
        cli_profile=profile,
        configured=cloak is not None,
        rebuild_mid_system=bool(getattr(entry, "rebuild_mid_system_message", False)),
        sign=bool(getattr(entry, "experimental_cch_signing", False)),
        seed=entry.api_key,
        account_uuid=str(uuid.uuid5(uuid.NAMESPACE_OID, "cpa-claude-code-cli-account|" + entry.api_key))
        if profile
        else "",
        defaults=config.claude_header_defaults,
    )
    return ClaudeCloak(settings) if settings.cloaks_other_clients else None


def shaper_for_file(metadata: Mapping[str, Any], credential_id: str, config: Config) -> ClaudeCloak | None:
    """The cloak of a Claude OAuth file: cloaks in `auto`; the `cloak_*` fields are strings."""
    words = metadata.get("cloak_sensitive_words")
    account = metadata.get("account_uuid")
    settings = CloakSettings(
        mode=_mode(config, str(metadata.get("cloak_mode") or "")),
        strict=_truthy(metadata.get("cloak_strict_mode")),
        sensitive_words=tuple(w.strip() for w in words.split(",") if w.strip()) if isinstance(words, str) else (),
        cache_user_id=_truthy(metadata.get("cloak_cache_user_id")),
        cli_profile=True,
        configured=any(k.startswith("cloak_") for k in metadata),
        rebuild_mid_system=_truthy(metadata.get("rebuild_mid_system_message")),
        sign=True,
        seed="auth-id|" + credential_id,
        account_uuid=account.lower()
        if isinstance(account, str) and _UUID.fullmatch(account)
        else str(uuid.uuid5(uuid.NAMESPACE_OID, "cpa-claude-code-cli-account|auth-id|" + credential_id)),
        defaults=config.claude_header_defaults,
    )
    return ClaudeCloak(settings) if settings.cloaks_other_clients else None
