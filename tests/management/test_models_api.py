"""`/auth-files/models` and `/model-definitions/{channel}` over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt
from tests.management.test_auth_files import claude_file

CONFIG = "host: 127.0.0.1\nauth-dir: ./auths\n" + MANAGEMENT_BLOCK


async def test_models_of_one_auth_file(proxy: ProxyFactory, tmp_path: Path) -> None:
    (tmp_path / "auths").mkdir()
    (tmp_path / "auths" / "claude-a.json").write_text(json.dumps(claude_file("a@example.com")))
    mgmt = Mgmt(await proxy(CONFIG))
    models = (await mgmt.get("/auth-files/models?name=claude-a.json")).json()["models"]
    ids = [m["id"] for m in models]
    assert "claude-sonnet-4-5-20250929" in ids
    assert all(m["type"] == "claude" for m in models)
    assert (await mgmt.get("/auth-files/models?name=missing.json")).json() == {"models": []}
    reply = await mgmt.get("/auth-files/models")
    assert (reply.status, reply.json()) == (400, {"error": "name is required"})


async def test_model_definitions(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    for url in ("/model-definitions/claude", "/model-definitions?channel=Claude"):
        data = (await mgmt.get(url)).json()
        assert data["channel"] == "claude"
        assert {"id", "display_name"} <= set(data["models"][0])
    reply = await mgmt.get("/model-definitions/nope")
    assert reply.status == 400 and reply.json()["error"].startswith("unknown channel: nope")
