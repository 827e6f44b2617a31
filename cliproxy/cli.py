"""Command line: `cliproxy [--config PATH] [--host H] [--port N] [--check]` serves; the operator, auth,
login and completion sub-commands register their own parsers.

The config file, host and port can also come from the environment (`CLIPROXY_CONFIG`,
`CLIPROXY_HOST`, `CLIPROXY_PORT`), which containers and service managers set: a flag wins over the
environment, the environment over the config file. Host and port only choose where to listen; the
config keeps its own values (management reads and writes show the file as it is).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cliproxy import __version__, auth_cli, completion, operator_cli
from cliproxy.config.model import Config
from cliproxy.credentials import commands as login_commands
from cliproxy.secret_files import SecretFileError, check_secret_path
from cliproxy.server.worker_process import WorkerRole, die_with_supervisor

log = logging.getLogger("cliproxy")

# Each adds its parsers to the sub-parser group and sets `func` on them: func(args) -> int.
SUBCOMMANDS = (operator_cli.register, auth_cli.register, login_commands.register)
DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV, HOST_ENV, PORT_ENV = "CLIPROXY_CONFIG", "CLIPROXY_HOST", "CLIPROXY_PORT"


class UsageError(Exception):
    """A bad value from the environment, said the way argparse says a bad flag."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cliproxy", description="LLM API proxy for many clients and providers.")
    parser.add_argument(
        "--config", "-config", default=None, help=f"config file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})"
    )
    parser.add_argument("--host", help=f"address to listen on (default: ${HOST_ENV}, else the config's host)")
    parser.add_argument("--port", type=int, help=f"port to listen on (default: ${PORT_ENV}, else the config's port)")
    parser.add_argument("--check", action="store_true", help="validate the config and exit 0 (ok) or 1")
    # Set by the supervisor on the workers it starts (`workers:` above 1); not for operators.
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--supervisor", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"cliproxy {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    completion.register(subparsers, build_parser)
    return parser


def listen_address(config: Config, args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, int]:
    """Where to listen: the flag, else the environment, else the config. Raises `UsageError`."""
    host = args.host if args.host is not None else env.get(HOST_ENV, config.host)
    port = args.port
    if port is None:
        raw = env.get(PORT_ENV, "").strip()
        if not raw:
            port = config.port
        elif raw.isdigit() and int(raw) <= 65535:
            port = int(raw)
        else:
            raise UsageError(f"{PORT_ENV}={raw!r} is not a port number (0-65535)")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port number (0-65535)")
    return host.strip(), port


def check_config(path: Path) -> int:
    from cliproxy.config.load import ConfigError, load_config

    try:
        loaded = load_config(path)
        tls = loaded.config.tls
        if tls.enable:  # the files are what `serve` would fail on; check them now
            from cliproxy.server.serve import ssl_context

            ssl_context(tls.cert, tls.key)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        return 1
    for line in loaded.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in loaded.compat_only:  # on stdout: the config is fine, these keys just do nothing here
        print(f"warning: {line}")
    print(f"{path}: ok")
    return 0


def run_server(path: Path, args: argparse.Namespace) -> int:
    from cliproxy.config.load import ConfigError, generate_default_config, load_config
    from cliproxy.logs import hold_early_logs, setup_logging
    from cliproxy.runtime import RuntimeHolder
    from cliproxy.server.serve import serve
    from cliproxy.watch import runtime_from_loaded

    if not path.exists():
        try:  # it will hold a client key: never where Git would pick it up
            check_secret_path(path)
        except SecretFileError as exc:
            print(f"error: not writing a new config: {exc}", file=sys.stderr)
            return 1
        created = generate_default_config(path)
        # Shown once; only the hash of the management secret is stored.
        print(
            f"Created {path} with a safe default config.\n"
            f"  client API key:     {created.client_key}\n"
            f"  management secret:  {created.management_secret}   (stored only as a bcrypt hash)\n"
            "Keep them now: they are not shown again.",
            flush=True,
        )
    role = worker_role(args)
    if role is not None and not die_with_supervisor(role):
        return 0  # the supervisor died while this worker started: nothing to serve for
    early = hold_early_logs()  # the loader logs (the secret hashed and written back) before the format is known
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        setup_logging(early=early)
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        return 1
    # Before the auth-dir scan, so its messages come out in the configured format.
    config = loaded.config
    setup_logging(
        debug=config.debug, log_format=config.log_format, early=early, worker=None if role is None else role.index
    )
    if role is None:  # the supervisor said them already
        for line in (*loaded.warnings, *loaded.compat_only):
            log.warning("config: %s", line)
    try:
        host, port = listen_address(loaded.config, args, os.environ)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if role is None and config.workers > 1:
        return run_supervisor(path, config, host, port)
    runtime = runtime_from_loaded(loaded)
    holder = RuntimeHolder(runtime)
    if holder.current.safe_mode:
        log.warning("api-keys holds template values (your-api-key-1..3): /v1 endpoints answer 403 until replaced")
    try:
        serve(holder, host=host, port=port, worker=role)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken
        print(f"error: cannot listen on {host or '*'}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


def worker_role(args: argparse.Namespace) -> WorkerRole | None:
    """This process's place under a supervisor (`--worker`, `--supervisor`), or None."""
    if args.worker is None or args.supervisor is None:
        return None
    return WorkerRole(index=args.worker, supervisor=args.supervisor)


def run_supervisor(path: Path, config: Config, host: str, port: int) -> int:
    """`workers:` above 1: this process starts and watches the workers and serves nothing itself."""
    from cliproxy.config.load import ConfigError
    from cliproxy.server.serve import ssl_context
    from cliproxy.server.workers import supervise

    try:
        if config.tls.enable:  # each worker would fail on them: say it once, now
            ssl_context(config.tls.cert, config.tls.key)
        return supervise(path, host, port, config.workers)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {host or '*'}:{port}: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.config is None:  # sub-commands that take their own --config read the same value
        args.config = os.environ.get(CONFIG_ENV, "").strip() or DEFAULT_CONFIG
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is not None:
        return func(args)
    path = Path(args.config)
    if args.check:
        return check_config(path)
    return run_server(path, args)
