"""The command line an operator meets: `--version`, the environment (`CLIPROXY_CONFIG`,
`CLIPROXY_HOST`, `CLIPROXY_PORT`; flags win over it, it wins over the file), shell completion
that really completes in bash, and a progress line for `auth test`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cliproxy import __version__
from cliproxy.accounts.db import AccountsDB
from cliproxy.accounts.model import User
from cliproxy.cli import build_parser, listen_address, main
from cliproxy.completion import script
from cliproxy.config.model import Config
from tests.fakes.upstreams import FakeUpstream
from tests.server.processes import free_port, spawn, stop, wait_healthy


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cliproxy {__version__}"


def test_flags_win_over_the_environment_which_wins_over_the_file() -> None:
    config = Config(host="127.0.0.1", port=8317)
    parse = build_parser().parse_args
    assert listen_address(config, parse([]), {}) == ("127.0.0.1", 8317)
    env = {"CLIPROXY_HOST": "0.0.0.0", "CLIPROXY_PORT": "9000"}
    assert listen_address(config, parse([]), env) == ("0.0.0.0", 9000)
    assert listen_address(config, parse(["--host", "::1", "--port", "9100"]), env) == ("::1", 9100)
    assert listen_address(config, parse(["--port", "0"]), env) == ("0.0.0.0", 0)


@pytest.mark.subprocess
async def test_a_process_configured_only_by_its_environment(tmp_path: Path) -> None:
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "proxy.yaml").write_text(f"host: 127.0.0.1\nport: {file_port}\nauth-dir: ./auths\n")
    env = {"CLIPROXY_CONFIG": "etc/proxy.yaml", "CLIPROXY_HOST": "0.0.0.0", "CLIPROXY_PORT": str(env_port)}
    proc = spawn(["-m", "cliproxy"], cwd=tmp_path, env=env)
    try:
        await wait_healthy(proc, f"http://127.0.0.1:{env_port}/healthz")
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert f"listening on http://0.0.0.0:{env_port}" in err
    assert "with an empty api-keys: anyone who can reach port" in err  # all interfaces, no client keys

    proc = spawn(["-m", "cliproxy", "--port", str(flag_port), "--host", "127.0.0.1"], cwd=tmp_path, env=env)
    try:
        await wait_healthy(proc, f"http://127.0.0.1:{flag_port}/healthz")
    finally:
        code, _, err = stop(proc)
    assert code == 0 and "empty api-keys" not in err  # loopback only: nobody else can reach it

    bad = subprocess.run(
        [sys.executable, "-m", "cliproxy"],
        cwd=tmp_path,
        env={**os.environ, **env, "CLIPROXY_PORT": "http"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "CLIPROXY_PORT='http' is not a port number" in bad.stderr


@pytest.mark.subprocess
async def test_no_open_proxy_warning_once_users_exist(tmp_path: Path) -> None:
    """Signed-up users close the front door even with an empty api-keys: no warning that says otherwise."""
    port = free_port()
    db = AccountsDB(tmp_path / "accounts.db")
    await db.put("users", "admin@example.com", User(email="admin@example.com", role="admin"))
    await db.close()
    config = f"host: 0.0.0.0\nport: {port}\nauth-dir: ./auths\naccounts-db: ./accounts.db\n"
    (tmp_path / "proxy.yaml").write_text(config)
    proc = spawn(["-m", "cliproxy", "--config", "proxy.yaml"], cwd=tmp_path)
    try:
        await wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert "accounts: 1 users" in err and "empty api-keys" not in err


def bash_complete(tmp_path: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` after `cliproxy`, with the generated script loaded."""
    completion = tmp_path / "cliproxy.bash"
    completion.write_text(script("bash", build_parser()))
    line = " ".join(f"'{w}'" for w in ("cliproxy", *words))
    program = (
        f"source {completion}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; _cliproxy; "
        "printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    result = subprocess.run(["bash", "-c", program], cwd=tmp_path, capture_output=True, text=True, check=True)
    return sorted(filter(None, result.stdout.splitlines()))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_options_choices_and_files(tmp_path: Path) -> None:
    (tmp_path / "prod.yaml").write_text("")
    assert bash_complete(tmp_path, "au") == ["auth"]
    assert bash_complete(tmp_path, "auth", "") == ["--help", "renew", "status", "test"]
    assert bash_complete(tmp_path, "--config", "prod.yaml", "auth", "test", "--inc") == ["--include-subscriptions"]
    assert bash_complete(tmp_path, "--config", "pro") == ["prod.yaml"]
    assert bash_complete(tmp_path, "completion", "") == ["--help", "bash", "zsh"]
    assert bash_complete(tmp_path, "--ver") == ["--version"]
    assert "keys" in bash_complete(tmp_path, "")


def test_zsh_completion_holds_the_same_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    text = capsys.readouterr().out
    assert text.rstrip().endswith("compdef _cliproxy cliproxy")
    assert "    'auth test' '--help --config --json --include-subscriptions --progress'" in text
    if shutil.which("zsh"):  # where zsh exists, it must parse and complete
        stubs = "compadd() { shift; print -l -- $@ }; compdef() { : }; _files() { print FILES }"
        program = f"{stubs}; source /dev/stdin; words=(cliproxy auth ''); CURRENT=3; _cliproxy"
        result = subprocess.run(["zsh", "-c", program], input=text, capture_output=True, text=True, check=True)
        assert set(result.stdout.split()) == {"--help", "status", "test", "renew"}


async def test_auth_test_shows_its_progress(
    tmp_path: Path, upstream: tuple[FakeUpstream, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = upstream
    keys = "".join(f"      - api-key: sk-progress-{i}000000\n" for i in range(3))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"auth-dir: ./auths\nopenai-compatibility:\n  - name: fake\n    base-url: {base}/v1\n"
        f"    api-key-entries:\n{keys}    models:\n      - name: gpt-fake\n"
    )
    code = await asyncio.to_thread(main, ["auth", "test", "--config", str(config), "--json", "--progress"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    names = [f"openai-compatibility[0].api-key-entries[{i}]" for i in range(3)]
    assert err.splitlines() == [f"auth test {i + 1}/3: {name}" for i, name in enumerate(names)]
    assert out.startswith("[")  # stdout keeps only the JSON
