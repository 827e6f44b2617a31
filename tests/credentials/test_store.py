"""auth-dir loading (CLIProxyAPI compatibility, skipping, reporting) and the atomic 0600 writer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cliproxy.credentials.files import CredentialFileError, credential_path, parse_time
from cliproxy.credentials.store import load_auth_dir, write_credential_file

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "auth-dir-sample"


def put(directory: Path, name: str, data: Any, mode: int = 0o600) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    os.chmod(path, mode)
    return path


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir() if p.is_file()}


def test_sample_dir_loads_one_credential_per_type(tmp_path: Path) -> None:
    auth = tmp_path / "auths"
    shutil.copytree(SAMPLE_DIR, auth)
    result = load_auth_dir(auth)
    assert result.errors == () and result.skipped == ()
    by_type = {c.type: c for c in result.credentials}
    assert sorted(by_type) == ["antigravity", "claude", "codex", "kimi", "vertex", "xai"]
    assert by_type["codex"].account_id == "00000000-fake-account" and by_type["codex"].plan_type == "plus"
    assert by_type["antigravity"].project_id == "fake-code-assist-project"
    assert by_type["xai"].label == "grok-user@example.com" and by_type["xai"].refresh_token.startswith("FAKE")
    assert by_type["kimi"].expires_at == datetime(2026, 1, 1, 1, tzinfo=UTC)
    vertex = by_type["vertex"]
    assert vertex.project_id == "fake-project-123" and vertex.location == "us-central1"
    assert "FAKE" in json.dumps(dict(vertex.metadata))
    claude = by_type["claude"]
    assert claude.id == "claude-user@example.com.json" and claude.label == "user@example.com"
    expected = hashlib.sha256(f"claude:{claude.path}".encode()).hexdigest()[:16]
    assert claude.auth_index == expected and claude.path.is_absolute()
    assert claude.expires_at == datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_cliproxyapi_auth_dir_loads_unchanged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A real-world CLIProxyAPI directory: other types, kebab-case, odd expiry shapes, junk."""
    put(tmp_path, "claude-a@x.com.json", {
        "type": "Claude", "email": "a@x.com", "access_token": "at", "refresh_token": "rt",
        "expired": "2026-03-01T10:00:00.123456789+08:00", "proxy-url": "socks5://127.0.0.1:1080",
        "priority": "5", "weight": 20, "excluded-models": ["Claude-3*", "claude-3*"], "headers": {"X-A": " 1 "},
        "model-aliases": [{"name": "claude-sonnet-4-5", "alias": "sonnet", "force-mapping": True}],
        "request-retry": 2, "disable-cooling": True, "disabled": True, "note": "n", "prefix": "/team/",
    })  # fmt: skip
    put(tmp_path, "codex-b@x.com.json", {
        "type": "codex", "email": "b@x.com", "token": {"access_token": "at2", "refresh_token": "rt2",
        "expiry": 1767225600000}, "lastRefresh": 1767139200, "websockets": True, "access_token": "at2",
    })  # fmt: skip
    put(tmp_path, "g-proj.json", {"type": "gemini", "token": {"access_token": "x"}})
    put(tmp_path, "gcli.json", {"type": "gemini-cli"})
    put(tmp_path, "kimi-1.json", {"type": "kimi", "access_token": "k"})  # served since kimi logins exist
    put(tmp_path, "antigravity-c@x.com.json", {"type": "antigravity", "access_token": "a"})
    put(tmp_path, "qwen-1.json", {"type": "qwen", "access_token": "q"})  # CLIProxyAPI types cliproxy does not serve
    put(tmp_path, "iflow-c@x.com.json", {"type": "iflow", "access_token": "i"})
    put(tmp_path, "notype.json", {"email": "x"})
    put(tmp_path, "broken.json", "{not json")
    put(tmp_path, "list.json", "[1, 2]")
    put(tmp_path, "heavy.json", {"type": "claude", "access_token": "a", "weight": 2_000_000})
    put(tmp_path, "vertex-bad.json", {"type": "vertex", "project_id": "p"})
    put(tmp_path, "cookie.cookie", "x")
    put(tmp_path, ".oauth-claude-abc.oauth", "{}")
    (tmp_path / "sub").mkdir()
    put(tmp_path / "sub", "nested.json", {"type": "claude", "access_token": "a"})
    before = snapshot(tmp_path)

    result = load_auth_dir(tmp_path)

    assert snapshot(tmp_path) == before  # loading never writes
    assert sorted(c.id for c in result.credentials) == [
        "antigravity-c@x.com.json",
        "claude-a@x.com.json",
        "codex-b@x.com.json",
        "kimi-1.json",
    ]
    claude = next(c for c in result.credentials if c.type == "claude")
    assert claude.proxy_url == "socks5://127.0.0.1:1080" and claude.priority == 5 and claude.weight == 20
    assert claude.excluded_models == ("claude-3*",) and dict(claude.headers) == {"X-A": "1"}
    assert claude.model_aliases[0].alias == "sonnet" and claude.model_aliases[0].force_mapping
    assert claude.request_retry == 2 and claude.disable_cooling is True and claude.disabled is True
    assert claude.prefix == "team" and claude.note == "n"
    assert claude.expires_at == datetime(2026, 3, 1, 2, 0, 0, 123456, tzinfo=UTC)
    assert "proxy-url" not in claude.metadata and claude.metadata["proxy_url"] == "socks5://127.0.0.1:1080"
    codex = next(c for c in result.credentials if c.type == "codex")
    assert codex.expires_at == datetime(2026, 1, 1, tzinfo=UTC)  # ms timestamp nested under token
    assert codex.last_refresh == datetime(2025, 12, 31, tzinfo=UTC) and codex.websockets
    errors = dict(result.errors)
    assert set(errors) == {"broken.json", "list.json", "heavy.json", "vertex-bad.json"}
    assert "weight" in errors["heavy.json"] and "service_account" in errors["vertex-bad.json"]
    skipped = dict(result.skipped)
    assert set(skipped) == {"g-proj.json", "gcli.json", "qwen-1.json", "iflow-c@x.com.json", "notype.json"}
    assert "qwen" in skipped["qwen-1.json"]


def test_group_readable_file_is_loaded_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    put(tmp_path, "claude-a.json", {"type": "claude", "access_token": "secret-token-value"}, mode=0o644)
    with caplog.at_level(logging.WARNING):
        result = load_auth_dir(tmp_path)
    assert result.credentials[0].insecure_mode
    assert any("readable by group or others" in r.getMessage() for r in caplog.records)
    assert "secret-token-value" not in caplog.text


def test_missing_auth_dir_is_empty(tmp_path: Path) -> None:
    assert load_auth_dir(tmp_path / "nope").credentials == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1767225600, datetime(2026, 1, 1, tzinfo=UTC)),
        ("1767225600000", datetime(2026, 1, 1, tzinfo=UTC)),
        ("soon", None),
        (True, None),
    ],
)
def test_parse_time(value: Any, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_write_is_atomic_0600_and_skips_identical_content(tmp_path: Path) -> None:
    path = tmp_path / "claude-a.json"
    assert write_credential_file(path, {"type": "claude", "access_token": "a"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    mtime = path.stat().st_mtime_ns
    assert not write_credential_file(path, {"type": "claude", "access_token": "a"})
    assert path.stat().st_mtime_ns == mtime
    os.chmod(path, 0o644)
    assert write_credential_file(path, {"type": "claude", "access_token": "b"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["access_token"] == "b"


CRASHING_WRITER = """
import resource, signal, sys
from pathlib import Path
from cliproxy.credentials.store import write_credential_file
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))  # the disk "fills up" mid-write
try:
    write_credential_file(Path(sys.argv[1]), {"type": "claude", "access_token": "b" * 5000})
except OSError:
    sys.exit(3)
"""


def test_a_write_failing_midway_leaves_the_old_file_and_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "claude-a.json"
    write_credential_file(path, {"type": "claude", "access_token": "a"})
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(path)], check=False)
    assert proc.returncode == 3
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["claude-a.json"]


@pytest.mark.parametrize(
    "name", ["../evil.json", "a/b.json", "a\\b.json", "..json", "x\n.json", "x\x00.json", "nojson", ""]
)
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CredentialFileError):
        credential_path(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_request_scoped_errors_of_a_file_come_before_its_channels(tmp_path: Path) -> None:
    from cliproxy.config.load import parse_config_text
    from cliproxy.routing.credentials import build_credential

    put(tmp_path, "claude-a.json", {
        "type": "claude", "access_token": "a",
        "request-scoped-errors": [{"status": 400, "match": ["prompt is too long"], "action": "stop"}],
    })  # fmt: skip
    put(tmp_path, "claude-b.json", {
        "type": "claude", "access_token": "b", "request_scoped_errors": [{"status": 400, "action": "sideways"}],
    })  # fmt: skip
    put(tmp_path, "claude-c.json", {"type": "claude", "access_token": "c", "request_scoped_errors": [
        {"status": 429, "match_regexr": ["("], "action": "continue"}]})  # fmt: skip
    result = load_auth_dir(tmp_path)
    errors = dict(result.errors)
    assert set(errors) == {"claude-b.json", "claude-c.json"}
    assert errors["claude-b.json"].startswith("request_scoped_errors[0].action:")
    assert "not a regular expression" in errors["claude-c.json"]
    config, _, _ = parse_config_text(
        "oauth-request-scoped-errors:\n  claude:\n    - {status: 529, action: continue-and-cooldown}\n"
    )
    (file,) = result.credentials
    routed = build_credential(file, config)
    assert routed is not None
    assert [(r.status, r.action) for r in routed.scoped_errors] == [(400, "stop"), (529, "continue-and-cooldown")]
