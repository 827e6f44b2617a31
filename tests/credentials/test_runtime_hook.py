"""The runtime snapshot carries auth-dir credentials through the lead's `scan_auth_dir` hook."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cliproxy.credentials.files import AuthFileCredential
from cliproxy.watch import load_runtime

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "auth-dir-sample"


def test_runtime_holds_auth_dir_credentials_and_errors(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE_DIR, tmp_path / "auths")
    (tmp_path / "auths" / "broken.json").write_text("{")
    (tmp_path / "auths" / "qwen-1.json").write_text(json.dumps({"type": "qwen"}))  # a type cliproxy does not serve
    config = tmp_path / "config.yaml"
    config.write_text("api-keys: [sk-test]\nauth-dir: auths\n")
    runtime = load_runtime(config)
    assert all(isinstance(c, AuthFileCredential) for c in runtime.auth_files)
    assert sorted(c.type for c in runtime.auth_files) == ["antigravity", "claude", "codex", "kimi", "vertex", "xai"]
    assert [name for name, _ in runtime.auth_errors] == ["broken.json"]
