"""Operator commands: ask a running proxy about keys and models, and manage client keys.

    cliproxy whoami                 this client key: name, allowed models, limits, usage, expiry
    cliproxy models                 the models this client key may use
    cliproxy keys list|create|disable|enable|rotate|delete   client keys (management API)
    cliproxy auth status|test|renew upstream credentials (see `cliproxy.auth_cli`)

The proxy is `--url` (or `CLIPROXY_URL`, else the proxy of the last `cliproxy login`, else
http://127.0.0.1:8317). Client-key commands use `--key` or `CLIPROXY_API_KEY`, else the personal
token of `cliproxy login`; management commands use `--key` or `CLIPROXY_MANAGEMENT_KEY`. Without a
management key, `keys list|create|revoke` manage one's own keys with the login token.
Output is a table, or JSON with `--json`. Exit status: 0 ok, 1 the proxy said no (its message is
printed), 2 the proxy could not be reached or the command was incomplete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from cliproxy.login_token import StoredLogin, load_login
from cliproxy.secret_files import SecretFileError

DEFAULT_URL = "http://127.0.0.1:8317"
TIMEOUT_SECONDS = 30.0


class CommandError(Exception):
    """A failure to report on stderr with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# -- output ------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as an aligned text table; `columns` are (field, heading)."""
    grid = [[heading.upper() for _, heading in columns]]
    grid.extend([cell(row.get(field)) for field, _ in columns] for row in rows)
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in grid)


def pairs(items: Sequence[tuple[str, Any]]) -> str:
    """`label: value` lines, aligned."""
    width = max((len(label) for label, _ in items), default=0)
    return "\n".join(f"{label.ljust(width)}  {cell(value)}" for label, value in items)


def emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> int:
    print(json.dumps(data, indent=2, sort_keys=False) if args.json else render(data))
    return 0


# -- HTTP --------------------------------------------------------------------------------------------


def request_json(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    """(status, parsed JSON or None) of one HTTP request; a connection failure raises CommandError(2)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach {url}: {reason}", 2) from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def error_message(payload: Any) -> str:
    """The human message of any of the error shapes the proxy speaks."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if isinstance(err, str):
            message = payload.get("message")
            return f"{err}: {message}" if message else err
    return str(payload)


def stored_login(proxy: str | None) -> StoredLogin | None:
    """The token `cliproxy login` stored for `proxy` (None: for the last proxy signed in to)."""
    try:
        return load_login(proxy)
    except SecretFileError as exc:
        raise CommandError(str(exc), 2) from None


def base_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("CLIPROXY_URL")
    if not url:
        login = stored_login(None)
        url = login.proxy if login is not None else DEFAULT_URL
    return str(url).rstrip("/")


def login_token(args: argparse.Namespace) -> str | None:
    """The stored login token for this proxy (an expired one is an error that says what to do)."""
    login = stored_login(base_url(args))
    if login is None:
        return None
    if login.expired:
        raise CommandError(f"your login token for {login.proxy} has expired: run `cliproxy login` again")
    return login.token


def key_from(args: argparse.Namespace, env: str) -> str:
    key = args.key or os.environ.get(env, "")
    if not key and env == "CLIPROXY_API_KEY":
        key = login_token(args) or ""
    if not key:
        hint = " or sign in with `cliproxy login --proxy URL`" if env == "CLIPROXY_API_KEY" else ""
        raise CommandError(f"no key: pass --key or set {env}{hint}", 2)
    return str(key)


def client_call(args: argparse.Namespace, path: str) -> Any:
    key = key_from(args, "CLIPROXY_API_KEY")
    status, payload = request_json(base_url(args) + path, headers={"Authorization": f"Bearer {key}"})
    if status != 200:
        raise CommandError(f"{status}: {error_message(payload)}")
    return payload


def account_call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """A call to one's own account (`/v0/account`) with the login token."""
    token = login_token(args)
    if token is None:
        raise CommandError("no key: pass --key or set CLIPROXY_MANAGEMENT_KEY, or sign in with `cliproxy login`", 2)
    status, payload = request_json(
        base_url(args) + "/v0/account" + path, method=method, headers={"Authorization": f"Bearer {token}"}, body=body
    )
    if status >= 300:
        raise CommandError(f"{status}: {error_message(payload)}")
    return payload


def management_key(args: argparse.Namespace) -> str:
    return str(args.key or os.environ.get("CLIPROXY_MANAGEMENT_KEY", ""))


def management_call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    key = key_from(args, "CLIPROXY_MANAGEMENT_KEY")
    status, payload = request_json(
        base_url(args) + "/v0/management" + path,
        method=method,
        headers={"Authorization": f"Bearer {key}"},
        body=body,
    )
    if status == 404 and payload is None:
        raise CommandError("404: the management API is off (no remote-management.secret-key on the proxy)")
    if status >= 300:
        raise CommandError(f"{status}: {error_message(payload)}")
    return payload


# -- whoami, models ----------------------------------------------------------------------------------


def render_whoami(data: dict[str, Any]) -> str:
    limits = data.get("limits") or {}
    usage = data.get("usage") or {}
    rows: list[tuple[str, Any]] = [
        ("name", data.get("name")),
        ("key", data.get("key")),
        ("expires", data.get("expires") or "never"),
        ("disabled", data.get("disabled")),
        ("model patterns", data.get("models")),
        ("allowed models", data.get("allowed_models")),
    ]
    rows.extend((f"limit {name}", value) for name, value in limits.items() if value not in (None, False))
    if data.get("limits", {}).get("max-budget-usd") is not None:
        rows.append(("budget used", f"${usage.get('cost_usd_this_period', 0):.4f} this {usage.get('budget_period')}"))
    account = data.get("account") or {}
    if account:
        token = account.get("key") or {}
        rows[:0] = [("user", account.get("user")), ("role", account.get("role")), ("team", account.get("team"))]
        rows.append((f"{(token.get('kind') == 'cli' and 'token') or 'key'} age", duration(token.get("age_seconds"))))
        if token.get("expires"):
            left = duration(token.get("expires_in_seconds"))
            rows.append(("token expires", f"{iso_time(token['expires'])} (in {left})"))
        budget = account.get("team_budget") or {}
        if budget.get("remaining_credits") is not None:
            rows.append(("team credits left", f"{budget['remaining_credits']:,.2f} of {budget['budget_credits']:,.2f}"))
        if budget.get("remaining_usd") is not None:
            rows.append(("team budget left", f"${budget['remaining_usd']:,.4f} of ${budget['budget_usd']:,.2f}"))
    rows += [
        ("tokens today", usage.get("tokens_today")),
        ("requests today", usage.get("requests_today")),
        ("requests last minute", usage.get("requests_last_minute")),
        ("in flight", usage.get("in_flight")),
        (f"cost this {usage.get('budget_period', 'period')}", usage.get("cost_usd_this_period")),
        ("unknown-price requests", usage.get("unknown_price_requests_this_period")),
        ("period resets", usage.get("period_resets")),
    ]
    return pairs(rows)


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    value = int(max(0, seconds))
    hours, rest = divmod(value, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def iso_time(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_whoami(args: argparse.Namespace) -> int:
    return emit(args, client_call(args, "/v1/cliproxy/whoami"), render_whoami)


def cmd_models(args: argparse.Namespace) -> int:
    payload = client_call(args, "/v1/models")
    models = payload.get("data", []) if isinstance(payload, dict) else []
    return emit(args, models, lambda rows: table(rows, [("id", "model"), ("owned_by", "owned by")]))


# -- keys --------------------------------------------------------------------------------------------

KEY_COLUMNS = [
    ("name", "name"),
    ("key", "key"),
    ("models", "models"),
    ("disabled", "disabled"),
    ("expires", "expires"),
    ("max-requests-per-minute", "rpm"),
    ("max-concurrent", "concurrent"),
    ("max-tokens-per-day", "tokens/day"),
    ("tokens_today", "tokens today"),
    ("max-budget-usd", "budget $"),
    ("budget-period", "period"),
    ("cost", "spent $"),
]


def _key_row(item: dict[str, Any]) -> dict[str, Any]:
    usage = item.get("usage") or {}
    return {**item, "tokens_today": usage.get("tokens_today"), "cost": usage.get("cost_usd_this_period")}


OWN_KEY_COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("kind", "kind"),
    ("status", "status"),
    ("models", "models"),
    ("max-budget-usd", "budget $"),
    ("cost", "spent $"),
    ("expires_at", "expires"),
]


def _own_key_row(item: dict[str, Any]) -> dict[str, Any]:
    usage = item.get("usage") or {}
    expires = iso_time(item["expires"]) if item.get("expires") else None
    return {**item, "cost": usage.get("cost_usd_this_period"), "expires_at": expires}


def cmd_keys_list(args: argparse.Namespace) -> int:
    if not management_key(args):
        own = account_call(args, "GET", "/keys").get("keys", [])
        return emit(args, own, lambda rows: table([_own_key_row(r) for r in rows], OWN_KEY_COLUMNS))
    items = management_call(args, "GET", "/client-keys").get("client-keys", [])
    return emit(args, items, lambda rows: table([_key_row(r) for r in rows], KEY_COLUMNS))


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    if management_key(args):
        raise CommandError("revoke is for your own keys (signed in with `cliproxy login`); use disable or delete", 2)
    data = account_call(args, "DELETE", f"/keys/{quote(args.name)}")
    return emit(args, data, lambda d: f"{d.get('name')}: revoked")


def key_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The limit flags given on the command line, in the config's spelling."""
    fields: dict[str, Any] = {}
    if args.models:
        fields["models"] = [m.strip() for part in args.models for m in part.split(",") if m.strip()]
    for flag, name in (
        ("rpm", "max-requests-per-minute"),
        ("tokens_per_day", "max-tokens-per-day"),
        ("budget", "max-budget-usd"),
        ("period", "budget-period"),
        ("concurrent", "max-concurrent"),
        ("expires", "expires"),
    ):
        value = getattr(args, flag)
        if value is not None:
            fields[name] = value
    if args.allow_unknown_price:
        fields["allow-unknown-price"] = True
    return fields


def render_new_key(data: dict[str, Any]) -> str:
    return f"{data['name']}: {data['key']}\nThis key is shown once and stored only as its SHA-256: keep it now."


def cmd_keys_create(args: argparse.Namespace) -> int:
    if not management_key(args):
        fields = key_fields(args)
        body = {
            "name": args.name,
            "models": fields.pop("models", None),
            "expires": fields.pop("expires", None),
            "limits": {k: v for k, v in fields.items() if k.startswith("max-")},
        }
        return emit(args, account_call(args, "POST", "/keys", body), render_new_key)
    data = management_call(args, "POST", "/client-keys", {"name": args.name, **key_fields(args)})
    return emit(args, data, render_new_key)


def cmd_keys_update(args: argparse.Namespace) -> int:
    data = management_call(args, "PATCH", f"/client-keys/{quote(args.name)}", key_fields(args))
    return emit(args, data, lambda d: f"{args.name}: updated")


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    data = management_call(args, "POST", f"/client-keys/{quote(args.name)}/rotate")
    return emit(args, data, render_new_key)


def keys_action(action: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if action == "delete":
            data = management_call(args, "DELETE", f"/client-keys/{quote(args.name)}")
        else:
            data = management_call(args, "POST", f"/client-keys/{quote(args.name)}/{action}")
        return emit(args, data, lambda d: f"{args.name}: {action}d")

    return run


def quote(name: str) -> str:
    from urllib.parse import quote as url_quote

    return url_quote(name, safe="")


# -- registration ------------------------------------------------------------------------------------


def add_common(parser: argparse.ArgumentParser, key_env: str) -> None:
    parser.add_argument("--url", help=f"the running proxy (env CLIPROXY_URL, default {DEFAULT_URL})")
    parser.add_argument("--key", help=f"the key to present (env {key_env})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", action="append", help="allowed model patterns, comma separated (glob)")
    parser.add_argument("--rpm", type=int, help="max requests per minute")
    parser.add_argument("--tokens-per-day", type=int, help="max tokens per UTC day")
    parser.add_argument("--budget", type=float, help="max spend in USD per budget period")
    parser.add_argument("--period", choices=("day", "week", "month"), help="budget period (default month)")
    parser.add_argument("--concurrent", type=int, help="max requests in flight")
    parser.add_argument("--expires", help="expiry: 2026-12-31 (through that day, UTC) or an ISO time")
    parser.add_argument("--allow-unknown-price", action="store_true", help="allow models without a known price")


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.status

    return run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`SUBCOMMANDS` hook: whoami, models and keys."""
    p = subparsers.add_parser("whoami", help="show this client key: models, limits, usage, expiry")
    add_common(p, "CLIPROXY_API_KEY")
    p.set_defaults(func=guarded(cmd_whoami))

    p = subparsers.add_parser("models", help="list the models this client key may use (also: models list)")
    p.add_argument("action", nargs="?", choices=("list",), help=argparse.SUPPRESS)
    add_common(p, "CLIPROXY_API_KEY")
    p.set_defaults(func=guarded(cmd_models))

    keys = subparsers.add_parser("keys", help="manage client keys (management API)")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="list client keys (redacted) with usage")
    add_common(p, "CLIPROXY_MANAGEMENT_KEY")
    p.set_defaults(func=guarded(cmd_keys_list))
    p = actions.add_parser("create", help="create a key (shown once)")
    p.add_argument("name")
    add_limit_flags(p)
    add_common(p, "CLIPROXY_MANAGEMENT_KEY")
    p.set_defaults(func=guarded(cmd_keys_create))
    p = actions.add_parser("update", help="change a key's models or limits")
    p.add_argument("name")
    add_limit_flags(p)
    add_common(p, "CLIPROXY_MANAGEMENT_KEY")
    p.set_defaults(func=guarded(cmd_keys_update))
    p = actions.add_parser("rotate", help="replace a key's secret (new key shown once)")
    p.add_argument("name")
    add_common(p, "CLIPROXY_MANAGEMENT_KEY")
    p.set_defaults(func=guarded(cmd_keys_rotate))
    p = actions.add_parser("revoke", help="revoke one of your own keys (signed in with `cliproxy login`)")
    p.add_argument("name", help="the key's name or id")
    add_common(p, "CLIPROXY_MANAGEMENT_KEY")
    p.set_defaults(func=guarded(cmd_keys_revoke))
    for action, text in (("disable", "disable a key"), ("enable", "enable a key again"), ("delete", "delete a key")):
        p = actions.add_parser(action, help=text)
        p.add_argument("name")
        add_common(p, "CLIPROXY_MANAGEMENT_KEY")
        p.set_defaults(func=guarded(keys_action(action)))
