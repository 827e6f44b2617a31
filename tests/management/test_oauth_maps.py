"""`oauth-excluded-models` and `oauth-model-alias` maps."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

CONFIG = (
    "host: 127.0.0.1\n"
    "oauth-excluded-models:\n  codex:\n    - gpt-5-mini # too small\n"
    "oauth-model-alias:\n  claude:\n    - name: claude-opus-4-1\n      alias: opus\n" + MANAGEMENT_BLOCK
)


def on_disk(tmp_path: Path, key: str) -> object:
    return yaml.safe_load((tmp_path / "config.yaml").read_text()).get(key)


async def test_excluded_models(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert (await mgmt.get("/oauth-excluded-models")).json() == {"oauth-excluded-models": {"codex": ["gpt-5-mini"]}}
    reply = await mgmt.patch(
        "/oauth-excluded-models", json={"provider": "Claude", "models": ["Claude-3-*", "claude-3-*"]}
    )
    assert reply.json() == {"status": "ok"}
    assert on_disk(tmp_path, "oauth-excluded-models") == {"codex": ["gpt-5-mini"], "claude": ["claude-3-*"]}
    assert "# too small" in (tmp_path / "config.yaml").read_text()
    reply = await mgmt.patch("/oauth-excluded-models", json={"provider": "vertex", "models": []})
    assert (reply.status, reply.json()) == (404, {"error": "provider not found"})
    assert (await mgmt.patch("/oauth-excluded-models", json={"provider": "claude", "models": []})).status == 200
    assert on_disk(tmp_path, "oauth-excluded-models") == {"codex": ["gpt-5-mini"]}
    assert (await mgmt.put("/oauth-excluded-models", json={"items": {"codex": ["A"], "claude": []}})).status == 200
    assert on_disk(tmp_path, "oauth-excluded-models") == {"codex": ["a"]}
    reply = await mgmt.delete("/oauth-excluded-models?provider=claude")
    assert (reply.status, reply.json()) == (404, {"error": "provider not found"})
    assert (await mgmt.delete("/oauth-excluded-models?provider=codex")).status == 200
    assert on_disk(tmp_path, "oauth-excluded-models") is None
    assert (await mgmt.put("/oauth-excluded-models", json=["x"])).status == 400


async def test_model_alias(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert (await mgmt.get("/oauth-model-alias")).json() == {
        "oauth-model-alias": {"claude": [{"name": "claude-opus-4-1", "alias": "opus"}]}
    }
    aliases = [
        {"name": "gpt-5", "alias": "g5", "fork": True},
        {"name": "gpt-5", "alias": "GPT-5"},  # name == alias: dropped
        {"name": "gpt-5-codex", "alias": "g5"},  # duplicate alias: dropped
    ]
    assert (await mgmt.patch("/oauth-model-alias", json={"channel": "codex", "aliases": aliases})).status == 200
    assert on_disk(tmp_path, "oauth-model-alias") == {
        "claude": [{"name": "claude-opus-4-1", "alias": "opus"}],
        "codex": [{"name": "gpt-5", "alias": "g5", "fork": True}],
    }
    assert (await mgmt.delete("/oauth-model-alias?provider=claude")).status == 200
    reply = await mgmt.delete("/oauth-model-alias")
    assert (reply.status, reply.json()) == (400, {"error": "missing channel"})
    reply = await mgmt.patch("/oauth-model-alias", json={"aliases": []})
    assert (reply.status, reply.json()) == (400, {"error": "invalid body"})


async def test_request_scoped_errors(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert (await mgmt.get("/oauth-request-scoped-errors")).json() == {"oauth-request-scoped-errors": {}}
    rules = [{"status": 400, "match": [" prompt is too long ", ""], "action": "stop"}]
    assert (await mgmt.put("/oauth-request-scoped-errors", json={"items": {"Claude": rules}})).status == 200
    expected = {"claude": [{"status": 400, "match": ["prompt is too long"], "action": "stop"}]}
    assert on_disk(tmp_path, "oauth-request-scoped-errors") == expected
    assert (await mgmt.get("/oauth-request-scoped-errors")).json() == {"oauth-request-scoped-errors": expected}
    patch = {"provider": "codex", "rules": [{"status": 413, "action": "stop-and-cooldown"}]}
    assert (await mgmt.patch("/oauth-request-scoped-errors", json=patch)).status == 200
    assert on_disk(tmp_path, "oauth-request-scoped-errors")["codex"] == [{"status": 413, "action": "stop-and-cooldown"}]
    reply = await mgmt.patch(
        "/oauth-request-scoped-errors", json={"channel": "codex", "rules": [{"status": 400, "action": "explode"}]}
    )
    assert reply.status == 422 and reply.json()["error"] == "invalid_config"  # the schema refuses the action
    for body in ({"channel": "codex", "rules": [{"match": ["x"]}]}, {"rules": []}):
        reply = await mgmt.patch("/oauth-request-scoped-errors", json=body)
        assert (reply.status, reply.json()) == (400, {"error": "invalid body"})
    reply = await mgmt.patch("/oauth-request-scoped-errors", json={"channel": "nope", "rules": []})
    assert (reply.status, reply.json()) == (404, {"error": "channel not found"})
    assert (await mgmt.delete("/oauth-request-scoped-errors?channel=claude")).status == 200
    assert (await mgmt.delete("/oauth-request-scoped-errors?provider=codex")).status == 200
    assert on_disk(tmp_path, "oauth-request-scoped-errors") is None
    reply = await mgmt.delete("/oauth-request-scoped-errors")
    assert (reply.status, reply.json()) == (400, {"error": "missing channel"})
