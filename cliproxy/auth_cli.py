"""`cliproxy auth status|test|renew`: the upstream credentials of a config and its auth-dir.

These read the config file and auth-dir directly (no running proxy needed) and never write the
config. What only a running proxy knows, the cooldowns, comes from its management API when
`--url` is given; otherwise it is shown as unknown.

    auth status [NAME]   every credential: secret present (redacted), expiry, last refresh, state
    auth test [NAME]     one minimal live request per credential (subscriptions only with
                         --include-subscriptions: they spend a personal plan's quota)
    auth renew [NAME]    refresh OAuth credentials now (writes the new tokens to their files)
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from cliproxy.clientkeys import redact
from cliproxy.config.load import ConfigError, parse_config_text
from cliproxy.config.model import Config
from cliproxy.credentials.oauth import OAuthError
from cliproxy.credentials.refresh import CredentialRefresher
from cliproxy.credentials.registry import BUILTIN, ProviderSettings
from cliproxy.credentials.service import TOKEN_SESSION_TIMEOUT, CredentialService
from cliproxy.credentials.store import CredentialStore, load_auth_dir
from cliproxy.operator_cli import CommandError, emit, guarded, management_call, table
from cliproxy.progress import ProgressLine
from cliproxy.routing.credentials import from_auth_files, synthesize
from cliproxy.routing.probe import probe
from cliproxy.runtime import resolve_auth_dir
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.clients import Sessions


@dataclass
class Entry:
    """One upstream credential as the status table shows it."""

    name: str  # config path (`claude-api-key[0]`) or auth-file name
    kind: str  # "api-key" (config) or "auth-file"
    provider: str
    account: str = ""
    secret: str = "missing"
    expires: str | None = None
    last_refresh: str | None = None
    state: str = "ok"
    cooldown: str = "unknown"
    subscription: bool = False
    source: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "provider": self.provider,
            "account": self.account or None,
            "secret": self.secret,
            "expires": self.expires,
            "last_refresh": self.last_refresh,
            "state": self.state,
            "cooldown": self.cooldown,
        }


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _presence(secret: str) -> str:
    return f"present ({redact(secret)})" if secret else "missing"


def load_local(config_path: Path) -> tuple[Config, Path]:
    """The validated config (read only, never rewritten) and its resolved auth-dir."""

    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {config_path}: {exc.strerror or exc}", 2) from None
    try:
        config, _, _ = parse_config_text(text, source=str(config_path))
    except ConfigError as exc:
        raise CommandError("; ".join(exc.errors), 2) from None
    return config, resolve_auth_dir(config, config_path)


def config_entries(config: Config) -> list[Entry]:
    entries: list[Entry] = []
    for section in BUILTIN.key_sections:
        if not isinstance(section, ApiKeySection):
            continue  # openai-compatibility: below, one row per key entry
        for i, item in enumerate(config.api_key_section(section.section)):
            entries.append(
                Entry(
                    name=f"{section.section}[{i}]",
                    kind="api-key",
                    provider=section.kind,
                    account=item.base_url or item.prefix,
                    secret=_presence(item.api_key),
                    state="disabled" if item.disabled else "ok",
                    source=item,
                )
            )
    for i, compat in enumerate(config.openai_compatibility):
        for j, key_entry in enumerate(compat.api_key_entries):
            entries.append(
                Entry(
                    name=f"openai-compatibility[{i}].api-key-entries[{j}]",
                    kind="api-key",
                    provider=f"openai-compatibility:{compat.name}",
                    account=compat.base_url,
                    secret=_presence(key_entry.api_key),
                    state="disabled" if compat.disabled else "ok",
                    source=(compat, key_entry),
                )
            )
    return entries


def auth_dir_entries(auth_dir: Path, now: datetime) -> list[Entry]:

    result = load_auth_dir(auth_dir)
    entries: list[Entry] = []
    for cred in result.credentials:
        kind = BUILTIN.auth_file(cred.type)
        if kind is not None and kind.account_type == "service_account":
            secret = "present (service account)"  # (the loader refuses a file without its key)
        else:
            secret = _presence(cred.access_token)
            if cred.refresh_token:
                secret += ", refresh token present"
        state = "ok"
        if cred.disabled:
            state = "disabled"
        elif cred.expires_at is not None and cred.expires_at <= now:
            state = "expired" + (" (renewable)" if cred.refresh_token else "")
        entries.append(
            Entry(
                name=cred.name,
                kind="auth-file",
                provider=cred.type,
                account=cred.email or cred.label,
                secret=secret,
                expires=_time(cred.expires_at),
                last_refresh=_time(cred.last_refresh),
                state=state,
                subscription=kind is not None and kind.subscription,
                source=cred,
            )
        )
    for name, message in result.errors:
        entries.append(Entry(name=name, kind="auth-file", provider="?", secret="?", state=f"invalid: {message}"))
    for name, message in result.skipped:
        entries.append(Entry(name=name, kind="auth-file", provider="?", secret="?", state=f"skipped: {message}"))
    return entries


def collect(args: argparse.Namespace) -> list[Entry]:
    config, auth_dir = load_local(Path(args.config))
    entries = config_entries(config) + auth_dir_entries(auth_dir, datetime.now(UTC))
    if args.name:
        entries = [e for e in entries if e.name == args.name or e.name == f"{args.name}.json"]
        if not entries:
            raise CommandError(f"no credential named {args.name!r} in the config or {auth_dir}", 1)
    return entries


def apply_cooldowns(args: argparse.Namespace, entries: list[Entry]) -> None:
    """Cooldowns from the running proxy (`--url`); without it they stay "unknown"."""
    if not args.url:
        return
    payload = management_call(args, "GET", "/credential-status")
    by_name: dict[str, dict[str, Any]] = {}
    for item in payload.get("credentials", []) if isinstance(payload, dict) else []:
        if isinstance(item, dict) and item.get("name"):
            by_name[str(item["name"])] = item
    for entry in entries:
        item = by_name.get(entry.name)
        if item is None:
            entry.cooldown = "not loaded by the proxy"
            continue
        cooling = item.get("cooldowns") or []
        entry.cooldown = ", ".join(f"{c['model']} until {c['until']}" for c in cooling) or "none"


STATUS_COLUMNS = [
    ("name", "name"),
    ("provider", "provider"),
    ("account", "account"),
    ("secret", "secret"),
    ("expires", "expires"),
    ("last_refresh", "last refresh"),
    ("state", "state"),
    ("cooldown", "cooldown"),
]


def cmd_status(args: argparse.Namespace) -> int:
    entries = collect(args)
    apply_cooldowns(args, entries)
    rows = [e.as_dict() for e in entries]
    return emit(args, rows, lambda r: table(r, STATUS_COLUMNS) if r else "no upstream credentials configured")


# -- renew -------------------------------------------------------------------------------------------


async def renew(entries: Sequence[Entry]) -> list[dict[str, Any]]:

    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        refresher = CredentialRefresher(session, ProviderSettings.from_env())
        for entry in entries:
            row: dict[str, Any] = {"name": entry.name, "provider": entry.provider}
            try:
                fresh = await refresher.refresh_now(entry.source)
            except OAuthError as exc:
                row.update(result="failed", detail=str(exc))
            else:
                row.update(result="renewed", detail=f"expires {_time(fresh.expires_at) or 'unknown'}")
            results.append(row)
    return results


def _renewable(cred_type: str) -> bool:
    kind = BUILTIN.auth_file(cred_type)
    return kind is not None and kind.refresh is not None


def cmd_renew(args: argparse.Namespace) -> int:
    entries = [e for e in collect(args) if e.kind == "auth-file" and e.source is not None]
    renewable = [e for e in entries if _renewable(e.provider) and e.source.refresh_token]
    if args.name and not renewable:
        raise CommandError(f"{args.name} is not an OAuth credential with a refresh token", 1)
    if not renewable:
        return emit(args, [], lambda r: "no OAuth credentials to renew")
    results = asyncio.run(renew(renewable))
    emit(
        args,
        results,
        lambda r: table(r, [("name", "name"), ("provider", "provider"), ("result", "result"), ("detail", "detail")]),
    )
    return 0 if all(r["result"] == "renewed" for r in results) else 1


# -- test --------------------------------------------------------------------------------------------


def routing_credentials(config: Config, auth_dir: Path) -> dict[str, Any]:
    """CLI name → routing `Credential` (with its executor) for every credential of config and auth-dir."""

    creds = synthesize(config) + from_auth_files(config, load_auth_dir(auth_dir).credentials)
    return {c.name: c for c in creds}


async def run_probes(
    targets: Sequence[tuple[Entry, Any]], progress: ProgressLine | None = None
) -> list[dict[str, Any]]:

    sessions = Sessions()
    async with aiohttp.ClientSession(timeout=TOKEN_SESSION_TIMEOUT, trust_env=True) as token_session:
        # The server's token plumbing without its app: refresh on expiry, minted tokens.
        service = CredentialService(store=CredentialStore(BUILTIN))
        await service.start(token_session)
        try:
            rows = []
            for entry, cred in targets:
                if progress is not None:
                    progress.step(entry.name)
                row = await probe(cred, sessions, service)
                row["name"] = entry.name
                rows.append(row)
            return rows
        finally:
            if progress is not None:
                progress.finish()
            await service.stop()
            await sessions.close()


def cmd_test(args: argparse.Namespace) -> int:
    config, auth_dir = load_local(Path(args.config))
    entries = collect(args)
    creds = routing_credentials(config, auth_dir)
    rows: list[dict[str, Any]] = []
    targets: list[tuple[Entry, Any]] = []
    for entry in entries:
        skipped = {"name": entry.name, "provider": entry.provider, "model": None, "result": "skipped"}
        cred = creds.get(entry.name)
        if entry.state != "ok" and not entry.state.startswith("expired"):
            rows.append({**skipped, "detail": entry.state})
        elif cred is None:
            rows.append({**skipped, "detail": "not routable (no base-url or key)"})
        elif entry.subscription and not args.include_subscriptions:
            rows.append({**skipped, "detail": "subscription: spends its plan's quota; pass --include-subscriptions"})
        else:
            targets.append((entry, cred))
    if targets:
        progress = ProgressLine("auth test", len(targets), enabled=True if args.progress else None)
        tested = asyncio.run(run_probes(targets, progress))
        order = {e.name: i for i, e in enumerate(entries)}
        rows = sorted(rows + tested, key=lambda r: order.get(r["name"], 0))
    columns = [
        ("name", "name"),
        ("provider", "provider"),
        ("model", "model"),
        ("result", "result"),
        ("detail", "detail"),
    ]
    emit(args, rows, lambda r: table(r, columns) if r else "no upstream credentials configured")
    return 1 if any(r["result"] == "failed" for r in rows) else 0


# -- registration ------------------------------------------------------------------------------------


def add_local(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one credential: auth-file name or config path like claude-api-key[0]")
    parser.add_argument(
        "--config", default=argparse.SUPPRESS, help="config file (default: the global --config, ./config.yaml)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`SUBCOMMANDS` hook: `auth status|test|renew`."""
    auth = subparsers.add_parser("auth", help="upstream credentials of the config and auth-dir")
    actions = auth.add_subparsers(dest="auth_command", metavar="ACTION", required=True)

    p = actions.add_parser("status", help="every credential: presence, expiry, last refresh, cooldowns")
    add_local(p)
    p.add_argument("--url", help="a running proxy to ask for cooldowns (env CLIPROXY_URL is not used here)")
    p.add_argument("--key", help="its management key (env CLIPROXY_MANAGEMENT_KEY)")
    p.set_defaults(func=guarded(cmd_status))

    p = actions.add_parser("test", help="one minimal live request per credential")
    add_local(p)
    p.add_argument(
        "--include-subscriptions",
        action="store_true",
        help="also test Claude/Codex subscription logins (each test spends a little of the plan's quota)",
    )
    p.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    p.set_defaults(func=guarded(cmd_test))

    p = actions.add_parser("renew", help="refresh OAuth credentials now")
    add_local(p)
    p.set_defaults(func=guarded(cmd_renew))
