"""`cliproxy login <provider>`: log in from the terminal and save the credential to auth-dir.

Without a provider (or with `--proxy`) the same command signs in to a cliproxy server instead.

The providers offered are those of the registry with a browser or a device-code login; `--device`
picks the device code where a provider has both, and is implied where it has only that.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import aiohttp

from cliproxy.config.load import load_config
from cliproxy.credentials.files import CredentialFileError
from cliproxy.credentials.login import BrowserLogin, browser_login, device_login, stdin_line_reader
from cliproxy.credentials.oauth import OAuthError, open_in_browser
from cliproxy.credentials.registry import BUILTIN, ProviderSettings
from cliproxy.proxy_login import run_proxy_login
from cliproxy.runtime import resolve_auth_dir
from cliproxy.secret_files import SecretFileError, check_secret_path

log = logging.getLogger(__name__)

DEFAULT_AUTH_DIR = "~/.cli-proxy-api"
TOS_WARNING = (
    "Note: routing a subscription through a proxy may break the provider's terms of service and "
    "can get the account suspended. You use it at your own risk."
)
BROWSER_LOGINS = tuple(kind.type for kind in BUILTIN.auth_files if kind.code_login is not None)
DEVICE_LOGINS = tuple(kind.type for kind in BUILTIN.auth_files if kind.device_login is not None)
LOGINS = (*BROWSER_LOGINS, *(t for t in DEVICE_LOGINS if t not in BROWSER_LOGINS))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "login",
        help=f"sign in to a proxy (--proxy URL), or log in to a subscription ({', '.join(LOGINS)})",
        description=(
            "Without a provider name (or with --proxy URL, or CLIPROXY_URL set): sign in to a cliproxy "
            "server and keep a personal token for `whoami`, `models` and `keys`. With a provider name: "
            "log in with OAuth and save the credential file into auth-dir (re-login keeps your edits)."
        ),
    )
    parser.add_argument("provider", nargs="?", choices=LOGINS)
    parser.add_argument("--proxy", help="the proxy to sign in to (env CLIPROXY_URL)")
    parser.add_argument("--no-browser", "-no-browser", action="store_true", help="print the URL, do not open it")
    parser.add_argument("--port", "-oauth-callback-port", type=int, help="local callback port (default per provider)")
    parser.add_argument(
        "--device", action="store_true", help=f"device-code login for headless machines ({', '.join(DEVICE_LOGINS)})"
    )
    parser.add_argument("--auth-dir", help="where to save (default: the config's auth-dir, else ~/.cli-proxy-api)")
    parser.add_argument("--config", "-config", default=argparse.SUPPRESS, help="config file to read auth-dir from")
    parser.set_defaults(func=run_login)


def auth_dir_for(args: argparse.Namespace) -> Path:
    """`--auth-dir`, else the config file's `auth-dir` (when the file exists), else the default."""
    if args.auth_dir:
        return Path(args.auth_dir).expanduser().absolute()
    config_path = Path(getattr(args, "config", "config.yaml"))
    if config_path.is_file():
        return resolve_auth_dir(load_config(config_path).config, config_path)
    return Path(DEFAULT_AUTH_DIR).expanduser()


async def login(args: argparse.Namespace, auth_dir: Path) -> Path:
    settings = ProviderSettings.from_env()

    def announce(message: str) -> None:
        print(message, flush=True)

    async with aiohttp.ClientSession(trust_env=True) as session:
        if args.device or args.provider not in BROWSER_LOGINS:
            return await device_login(
                args.provider, session=session, settings=settings, auth_dir=auth_dir, announce=announce
            )
        ui = BrowserLogin(
            announce=announce,
            open_url=None if args.no_browser else open_in_browser,
            read_pasted=stdin_line_reader() if sys.stdin and sys.stdin.isatty() else None,
            port=args.port,
        )
        return await browser_login(args.provider, session=session, settings=settings, auth_dir=auth_dir, ui=ui)


def run_login(args: argparse.Namespace) -> int:
    if args.proxy or args.provider is None:
        return run_proxy_login(args)
    if args.device and args.provider not in DEVICE_LOGINS:
        print(f"error: --device is only available for {', '.join(DEVICE_LOGINS)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        auth_dir = auth_dir_for(args)
    except Exception as exc:
        print(f"error: cannot read the config for auth-dir: {exc}", file=sys.stderr)
        return 1
    print(TOS_WARNING, file=sys.stderr)
    try:
        check_secret_path(auth_dir, directory=True)
        path = asyncio.run(login(args, auth_dir))
    except (OAuthError, CredentialFileError, OSError, SecretFileError) as exc:
        print(f"error: {args.provider} login failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("login cancelled", file=sys.stderr)
        return 130
    print(f"Saved {path}")
    return 0
