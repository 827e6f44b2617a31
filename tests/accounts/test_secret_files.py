"""Secret files as careful tools treat them: the CLI's token file, and the config and auth-dir the
CLI writes, are refused when others may read them, and inside a Git repository when tracked or
not ignored, with an error that says how to fix it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cliproxy.cli import main
from cliproxy.login_token import StoredLogin, load_login, save_login
from cliproxy.secret_files import SecretFileError, check_secret_path

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def login() -> StoredLogin:
    return StoredLogin("http://127.0.0.1:1", "sk-cli-secret-token-000", None, 0.0, "a@example.com")


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "login.json"
    save_login(login(), path)
    assert load_login(None, path) == StoredLogin(login().proxy, login().token, None, 0.0, "a@example.com")
    path.chmod(0o644)
    with pytest.raises(SecretFileError) as info:
        load_login(None, path)
    assert "chmod 600" in str(info.value) and str(path) in str(info.value)
    path.chmod(0o600)
    path.parent.chmod(0o755)
    with pytest.raises(SecretFileError) as info:
        save_login(login(), path)
    assert "chmod 700" in str(info.value)


def test_cli_commands_refuse_an_open_token_file(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("CLIPROXY_API_KEY", raising=False)
    path = save_login(login())
    path.chmod(0o640)
    assert main(["whoami", "--url", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "accessible by other users" in err and "chmod 600" in err


@needs_git
def test_token_file_in_a_git_repository_must_be_ignored(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    path = repo / "secrets" / "login.json"
    with pytest.raises(SecretFileError) as info:
        save_login(login(), path)
    assert ".gitignore" in str(info.value)
    (repo / ".gitignore").write_text("secrets/\n")
    save_login(login(), path)  # ignored: fine
    assert load_login(None, path) is not None


@needs_git
def test_tracked_secret_file_is_refused(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    path = repo / "config.yaml"
    path.write_text("api-keys: [x]\n")
    path.chmod(0o600)
    subprocess.run(["git", "-C", str(repo), "add", "config.yaml"], check=True)
    (repo / ".gitignore").write_text("config.yaml\n")  # ignoring it now does not untrack it
    with pytest.raises(SecretFileError) as info:
        check_secret_path(path)
    assert "tracked" in str(info.value) and "git -C" in str(info.value) and "rm --cached" in str(info.value)


@needs_git
def test_server_does_not_write_a_new_config_into_a_repository(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    done = subprocess.run(
        [sys.executable, "-m", "cliproxy", "--config", str(repo / "config.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "not writing a new config" in done.stderr and ".gitignore" in done.stderr
    assert not (repo / "config.yaml").exists()


async def test_subscription_login_refuses_an_open_auth_dir(tmp_path: Path) -> None:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    auth_dir.chmod(0o755)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cliproxy", "login", "claude", "--no-browser", "--port", "0", "--auth-dir", str(auth_dir),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert b"chmod 700" in err and str(auth_dir).encode() in err
