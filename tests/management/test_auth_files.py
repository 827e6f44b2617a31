"""`/auth-files` over HTTP: list, upload (raw, multipart, batch 207), download, delete, status, fields."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from cliproxy.credentials.files import auth_index_for
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

CONFIG = (
    "host: 127.0.0.1\nauth-dir: ./auths\nclaude-api-key:\n  - api-key: sk-ant-config-key # keep me\n" + MANAGEMENT_BLOCK
)


def claude_file(email: str = "user@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "type": "claude",
        "email": email,
        "access_token": "FAKE-access-token",
        "refresh_token": "FAKE-refresh-token",
        "expired": "2099-01-01T00:00:00Z",
        **extra,
    }


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "auths"
    directory.mkdir()
    (directory / "claude-a@example.com.json").write_text(json.dumps(claude_file("a@example.com")))
    (directory / "broken.json").write_text("{not json")
    return directory


def loaded_names(server: Any) -> list[str]:
    return sorted(c.name for c in server.app[SERVICES].holder.current.auth_files)


async def test_list(proxy: ProxyFactory, auth_dir: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    reply = await mgmt.get("/auth-files")
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    files = reply.json()["files"]
    assert [f["name"] for f in files] == ["broken.json", "claude-a@example.com.json"]
    good = files[1]
    path = auth_dir / "claude-a@example.com.json"
    assert good["auth_index"] == auth_index_for("claude", path.absolute())
    assert good["type"] == good["provider"] == "claude"
    assert good["email"] == good["label"] == "a@example.com"
    assert good["status"] == "active" and good["disabled"] is False and good["source"] == "file"
    assert good["size"] == path.stat().st_size and good["path"] == str(path.absolute())
    assert len(good["recent_requests"]) == 20
    assert files[0]["status"] == "error" and "not valid JSON" in files[0]["status_message"]
    # Config API-key credentials are not listed; filters work.
    assert all(f["type"] != "claude-api-key" for f in files)
    filtered = (await mgmt.get(f"/auth-files?auth_index={good['auth_index']}")).json()["files"]
    assert [f["name"] for f in filtered] == ["claude-a@example.com.json"]
    assert (await mgmt.get("/auth-files?name=nope.json")).json() == {"files": []}


async def test_raw_upload_is_0600_and_live_at_once(proxy: ProxyFactory, auth_dir: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    reply = await mgmt.post("/auth-files?name=claude-b@example.com.json", json=claude_file("b@example.com"))
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    path = auth_dir / "claude-b@example.com.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["email"] == "b@example.com"
    assert "claude-b@example.com.json" in loaded_names(server)  # registered before the response


@pytest.mark.parametrize(
    ("query", "body", "status", "error"),
    [
        ("?name=../evil.json", b"{}", 400, "invalid name"),
        ("?name=sub/evil.json", b"{}", 400, "invalid name"),
        ("?name=sub%5Cevil.json", b"{}", 400, "invalid name"),
        ("?name=bad%01name.json", b"{}", 400, "invalid name"),
        ("", b"{}", 400, "invalid name"),
        ("?name=creds.txt", b"{}", 400, "name must end with .json"),
        ("?name=x.json", b"{not json", 500, "invalid auth file: not valid JSON"),
        (
            "?name=x.json",
            b'{"type": "claude"}',
            500,
            "invalid auth file: claude: access_token or refresh_token is required",
        ),
        (
            "?name=x.json",
            b'{"type": "qwen", "access_token": "t"}',  # a CLIProxyAPI type cliproxy does not serve
            500,
            "invalid auth file: unsupported credential type 'qwen'",
        ),
    ],
)
async def test_raw_upload_errors(
    proxy: ProxyFactory, auth_dir: Path, query: str, body: bytes, status: int, error: str
) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    before = sorted(p.name for p in auth_dir.parent.rglob("*"))
    reply = await mgmt.post(f"/auth-files{query}", data=body, headers={"Content-Type": "application/json"})
    assert reply.status == status
    assert reply.json()["error"].startswith(error)
    assert sorted(p.name for p in auth_dir.parent.rglob("*")) == before


async def test_upload_over_1_mib_is_413(proxy: ProxyFactory, auth_dir: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    big = json.dumps(claude_file(note="x" * (1024 * 1024))).encode()
    reply = await mgmt.post("/auth-files?name=big.json", data=big)
    assert reply.status == 413 and reply.json()["error"] == "auth file too large"
    form = aiohttp.FormData()
    form.add_field("file", big, filename="big.json", content_type="application/json")
    reply = await mgmt.post("/auth-files", data=form)
    assert reply.status == 413
    assert not (auth_dir / "big.json").exists()


def form(*files: tuple[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, content in files:
        data.add_field("file", content, filename=name, content_type="application/json")
    return data


async def test_multipart_single_and_batch(proxy: ProxyFactory, auth_dir: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    reply = await mgmt.post("/auth-files", data=form(("claude-c@example.com.json", json.dumps(claude_file()).encode())))
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    ok = json.dumps(claude_file("d@example.com")).encode()
    reply = await mgmt.post("/auth-files", data=form(("claude-d.json", ok), ("claude-e.json", ok)))
    assert (reply.status, reply.json()) == (
        200,
        {"status": "ok", "uploaded": 2, "files": ["claude-d.json", "claude-e.json"]},
    )
    reply = await mgmt.post("/auth-files", data=form(("claude-f.json", ok), ("notes.txt", ok), ("g.json", b"[]")))
    assert reply.status == 207
    assert reply.json() == {
        "status": "partial",
        "uploaded": 1,
        "files": ["claude-f.json"],
        "failed": [
            {"name": "notes.txt", "error": "file must be .json"},
            {"name": "g.json", "error": "invalid auth file: not a JSON object"},
        ],
    }
    assert {"claude-c@example.com.json", "claude-d.json", "claude-e.json", "claude-f.json"} <= set(loaded_names(server))
    empty = aiohttp.FormData(default_to_multipart=True)
    empty.add_field("comment", "no file here")
    reply = await mgmt.post("/auth-files", data=empty)
    assert (reply.status, reply.json()) == (400, {"error": "no files uploaded"})


async def test_download(proxy: ProxyFactory, auth_dir: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    reply = await mgmt.get("/auth-files/download?name=claude-a@example.com.json")
    assert reply.status == 200
    assert reply.body == (auth_dir / "claude-a@example.com.json").read_bytes()
    assert reply.headers["Content-Disposition"] == 'attachment; filename="claude-a@example.com.json"'
    assert reply.headers["Cache-Control"] == "no-store"
    for name, status, error in [
        ("../config.yaml", 400, "invalid name"),
        ("x.yaml", 400, "name must end with .json"),
        ("missing.json", 404, "file not found"),
    ]:
        reply = await mgmt.get(f"/auth-files/download?name={name}")
        assert (reply.status, reply.json()) == (status, {"error": error})


async def test_delete(proxy: ProxyFactory, auth_dir: Path) -> None:
    for name in ("one.json", "two.json", "three.json"):
        (auth_dir / name).write_text(json.dumps(claude_file(name)))
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    reply = await mgmt.delete("/auth-files?name=claude-a@example.com.json")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    assert not (auth_dir / "claude-a@example.com.json").exists()
    assert "claude-a@example.com.json" not in loaded_names(server)
    reply = await mgmt.delete("/auth-files?name=claude-a@example.com.json")
    assert (reply.status, reply.json()) == (404, {"error": "auth file not found"})
    reply = await mgmt.delete("/auth-files", json={"names": ["one.json", "missing.json"]})
    assert reply.status == 207
    assert reply.json() == {
        "status": "partial",
        "deleted": 1,
        "files": ["one.json"],
        "failed": [{"name": "missing.json", "error": "auth file not found"}],
    }
    reply = await mgmt.delete("/auth-files?name=two.json&name=three.json")
    assert reply.json() == {"status": "ok", "deleted": 2, "files": ["two.json", "three.json"]}
    reply = await mgmt.delete("/auth-files?name=../config.yaml")
    assert (reply.status, reply.json()) == (400, {"error": "invalid name"})
    reply = await mgmt.delete("/auth-files")
    assert (reply.status, reply.json()) == (400, {"error": "name is required"})
    (auth_dir / "x.json").write_text(json.dumps(claude_file()))
    reply = await mgmt.delete("/auth-files?all=true")
    assert reply.json() == {"status": "ok", "deleted": 2}  # x.json and broken.json
    assert list(auth_dir.iterdir()) == [] and loaded_names(server) == []
    assert (auth_dir.parent / "config.yaml").exists()


async def test_status_for_a_file(proxy: ProxyFactory, auth_dir: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    path = auth_dir / "claude-a@example.com.json"
    reply = await mgmt.patch("/auth-files/status", json={"name": path.name, "disabled": True})
    assert (reply.status, reply.json()) == (200, {"status": "ok", "disabled": True})
    assert json.loads(path.read_text())["disabled"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cred = next(c for c in server.app[SERVICES].holder.current.auth_files if c.name == path.name)
    assert cred.disabled is True
    listed = (await mgmt.get(f"/auth-files?name={path.name}")).json()["files"][0]
    assert listed["status"] == "disabled" and listed["disabled"] is True
    reply = await mgmt.patch("/auth-files/status", json={"auth_index": cred.auth_index, "disabled": False})
    assert reply.status == 200 and json.loads(path.read_text())["disabled"] is False
    for body, status, error in [
        ({"disabled": True}, 400, "name is required"),
        ({"name": path.name}, 400, "disabled is required"),
        ({"name": path.name, "disabled": "yes"}, 400, "disabled is required"),
        ({"name": "missing.json", "disabled": True}, 404, "auth file not found"),
    ]:
        reply = await mgmt.patch("/auth-files/status", json=body)
        assert (reply.status, reply.json()) == (status, {"error": error})


async def test_status_for_a_config_key_uses_excluded_models(
    proxy: ProxyFactory, tmp_path: Path, auth_dir: Path
) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    index = (await mgmt.get("/claude-api-key")).json()["claude-api-key"][0]["auth-index"]
    reply = await mgmt.patch("/auth-files/status", json={"auth_index": index, "disabled": True})
    assert reply.json() == {"status": "ok", "disabled": True, "via": "config:excluded-models", "excluded_pattern": "*"}
    text = (tmp_path / "config.yaml").read_text()
    assert yaml.safe_load(text)["claude-api-key"][0]["excluded-models"] == ["*"]
    assert "# keep me" in text
    assert server.app[SERVICES].holder.current.config.claude_api_key[0].excluded_models == ("*",)
    await mgmt.patch("/auth-files/status", json={"auth_index": index, "disabled": False})
    assert "excluded-models" not in yaml.safe_load((tmp_path / "config.yaml").read_text())["claude-api-key"][0]


async def test_fields(proxy: ProxyFactory, auth_dir: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    path = auth_dir / "claude-a@example.com.json"
    body = {
        "name": path.name,
        "proxy-url": "socks5://127.0.0.1:1080",
        "prefix": "team",
        "weight": 3,
        "meta.owner.team": "blue",
        "request_retry": -1,
        "headers": {"X-Team": "blue"},
    }
    reply = await mgmt.patch("/auth-files/fields", json=body)
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    data = json.loads(path.read_text())
    assert data["proxy_url"] == "socks5://127.0.0.1:1080" and "proxy-url" not in data
    assert data["prefix"] == "team" and data["weight"] == 3
    assert data["meta"] == {"owner": {"team": "blue"}}
    assert "request_retry" not in data and data["headers"] == {"X-Team": "blue"}
    cred = next(c for c in server.app[SERVICES].holder.current.auth_files if c.name == path.name)
    assert (cred.prefix, cred.proxy_url, cred.weight) == ("team", "socks5://127.0.0.1:1080", 3)
    reply = await mgmt.patch("/auth-files/fields", json={"name": path.name, "weight": None})
    assert reply.status == 200 and "weight" not in json.loads(path.read_text())
    for payload, status, error in [
        ({"name": path.name}, 400, "no fields to update"),
        ({"prefix": "x"}, 400, "name is required"),
        ({"name": path.name, "weight": "heavy"}, 400, "weight must be an integer"),
        ({"name": path.name, "headers": ["x"]}, 400, "headers must be an object"),
        ({"name": "missing.json", "note": "x"}, 404, "auth file not found"),
    ]:
        reply = await mgmt.patch("/auth-files/fields", json=payload)
        assert (reply.status, reply.json()) == (status, {"error": error})
    reply = await mgmt.patch("/auth-files/fields", json={"name": path.name, "weight": 2_000_000})
    assert reply.status == 400 and reply.json()["error"].startswith("invalid auth file: weight")


async def test_list_shows_request_counters_from_the_usage_store(proxy: ProxyFactory, auth_dir: Path) -> None:
    from tests.management.test_usage_api import record

    server = await proxy(CONFIG)
    path = auth_dir / "claude-a@example.com.json"
    index = auth_index_for("claude", path.absolute())
    store = server.app[SERVICES].usage
    store.add(record(auth_index=index, credential_id=path.name))
    store.add(record(auth_index=index, credential_id=path.name, failed=True, status=500))
    store.add(record(auth_index="another-credential"))
    (entry,) = (await Mgmt(server).get(f"/auth-files?name={path.name}")).json()["files"]
    assert (entry["success"], entry["failed"]) == (1, 1)
    assert len(entry["recent_requests"]) == 20
    assert entry["recent_requests"][-1]["success"] == 1 and entry["recent_requests"][-1]["failed"] == 1
    assert sum(b["success"] + b["failed"] for b in entry["recent_requests"]) == 2
