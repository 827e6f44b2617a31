"""The management API knows the new providers as it knows the others: key lists, auth files, channels.

`xai-api-key` and `interactions-api-key` are lists like every `<name>-api-key` (xAI entries without
base-url are dropped, as CLIProxyAPI does); `xai`, `kimi` and `antigravity` files are listed,
uploaded and switched off like any auth file; `oauth-model-alias` takes their channels and
`aistudio`, and the model listings follow at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt
from tests.providers.world import LATER, put

SAMPLES = Path(__file__).resolve().parents[2] / "auth-dir-sample"
CONFIG = (
    """\
host: 127.0.0.1
auth-dir: ./auths
api-keys: [sk-client-m]
xai-api-key:
  - api-key: "xai-one" # keep me
    base-url: "https://api.x.ai/v1"
    websockets: true
interactions-api-key:
  - api-key: "AIza-int"
"""
    + MANAGEMENT_BLOCK
)


def seed(tmp_path: Path) -> Path:
    auths = tmp_path / "auths"
    auths.mkdir()
    for name in ("xai-grok-user@example.com.json", "kimi-1767225600000.json", "antigravity-user@example.com.json"):
        data = json.loads((SAMPLES / name).read_text())
        data["expired"] = LATER  # not due: the test must not wait on (or fail) a refresh
        put(auths, name, data)
    return auths


async def test_the_new_key_lists(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    (entry,) = (await mgmt.get("/xai-api-key")).json()["xai-api-key"]
    assert entry["api-key"] == "xai-one" and entry["websockets"] is True and len(entry["auth-index"]) == 16
    assert (await mgmt.get("/interactions-api-key")).json()["interactions-api-key"][0]["api-key"] == "AIza-int"
    items = [{"api-key": "xai-two", "base-url": "https://api.x.ai/v1"}, {"api-key": "xai-no-base"}]
    assert (await mgmt.put("/xai-api-key", json=items)).status == 200
    on_disk = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert on_disk["xai-api-key"] == [{"api-key": "xai-two", "base-url": "https://api.x.ai/v1"}]  # no base-url: dropped
    patch = {"index": 0, "value": {"prefix": "grok"}}
    assert (await mgmt.patch("/xai-api-key", json=patch)).status == 200
    assert server.app[SERVICES].holder.current.config.api_key_section("xai-api-key")[0].prefix == "grok"
    assert (await mgmt.delete("/interactions-api-key?index=0")).status == 200
    assert not yaml.safe_load((tmp_path / "config.yaml").read_text()).get("interactions-api-key")


async def test_new_auth_files_are_listed_uploaded_and_switched_off(proxy: ProxyFactory, tmp_path: Path) -> None:
    auths = seed(tmp_path)
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    files = {f["name"]: f for f in (await mgmt.get("/auth-files")).json()["files"]}
    assert {f["type"] for f in files.values()} == {"xai", "kimi", "antigravity"}
    assert all(f["status"] == "active" and f["account_type"] == "oauth" for f in files.values())
    assert files["xai-grok-user@example.com.json"]["email"] == "grok-user@example.com"
    upload = json.loads((SAMPLES / "kimi-1767225600000.json").read_text())
    reply = await mgmt.post("/auth-files?name=kimi-2.json", json={**upload, "device_id": "dev-2"})
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    assert "kimi-2.json" in {c.name for c in server.app[SERVICES].holder.current.auth_files}
    reply = await mgmt.patch("/auth-files/status", json={"name": "antigravity-user@example.com.json", "disabled": True})
    assert reply.status == 200
    assert json.loads((auths / "antigravity-user@example.com.json").read_text())["disabled"] is True


async def test_alias_channels_of_the_new_providers(proxy: ProxyFactory, tmp_path: Path) -> None:
    seed(tmp_path)
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    for channel, name in (("antigravity", "gemini-3-flash"), ("kimi", "kimi-k2.5"), ("xai", "grok-4.3"),
                          ("aistudio", "gemini-2.5-flash")):  # fmt: skip
        body = {"channel": channel, "aliases": [{"name": name, "alias": f"{channel}-alias"}]}
        assert (await mgmt.patch("/oauth-model-alias", json=body)).status == 200
    assert set(yaml.safe_load((tmp_path / "config.yaml").read_text())["oauth-model-alias"]) == {
        "antigravity",
        "kimi",
        "xai",
        "aistudio",
    }
    routes = server.app[SERVICES].holder.current.catalog.routes
    for channel in ("antigravity", "kimi", "xai"):
        (cand,) = routes[f"{channel}-alias"].candidates
        assert cand.credential.provider == channel
    assert "aistudio-alias" not in routes  # no relay is connected
