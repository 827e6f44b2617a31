"""`GET`/`PUT /config.yaml`: raw bytes out (hashes redacted), validated raw bytes in."""

from __future__ import annotations

from pathlib import Path

from cliproxy.server.services import SERVICES
from tests.config.styled import SECRET_TOKEN, STYLED_CONFIG
from tests.conftest import ProxyFactory
from tests.management.client import SECRET_HASH, VIEWER_HASH, Mgmt

STYLED = STYLED_CONFIG.replace(SECRET_TOKEN, SECRET_HASH).replace(
    "  # disable-auto-update-panel: false\n", f'  viewer-keys: ["{VIEWER_HASH}"]\n'
)


async def test_get_returns_the_file_without_secret_hashes(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(STYLED))
    reply = await mgmt.get("/config.yaml")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/yaml; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    text = reply.body.decode()
    assert SECRET_HASH not in text and VIEWER_HASH not in text
    assert text == STYLED.replace(SECRET_HASH, "<redacted:secret-key>").replace(
        VIEWER_HASH, "<redacted:viewer-keys[0]>"
    )


async def test_get_config_json_never_has_the_secret(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(STYLED))
    reply = await mgmt.get("/config")
    assert reply.status == 200
    assert SECRET_HASH.encode() not in reply.body and VIEWER_HASH.encode() not in reply.body


async def test_put_round_trip_keeps_access_and_comments(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(STYLED)
    mgmt = Mgmt(server)
    text = (await mgmt.get("/config.yaml")).body.decode()
    edited = text.replace("debug: false", "debug: true # turned on from the editor")
    reply = await mgmt.put("/config.yaml", data=edited.encode())
    assert (reply.status, reply.json()) == (200, {"ok": True, "changed": ["config"]})
    # The placeholders were put back: the file is the original with the one edit.
    assert (tmp_path / "config.yaml").read_text() == STYLED.replace(
        "debug: false", "debug: true # turned on from the editor"
    )
    assert server.app[SERVICES].holder.current.config.debug is True  # live on return
    assert (await mgmt.get("/debug")).json() == {"debug": True}  # and the secret still works


async def test_put_invalid_yaml_is_400(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(STYLED))
    before = (tmp_path / "config.yaml").read_bytes()
    for body in (b"debug: [unclosed\n", b"- just\n- a list\n", b"   \n"):
        reply = await mgmt.put("/config.yaml", data=body)
        assert reply.status == 400, body
        assert reply.json()["error"] == "invalid_yaml" and reply.json()["message"]
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_put_invalid_config_is_422(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(STYLED))
    before = (tmp_path / "config.yaml").read_bytes()
    bad = STYLED.replace('base-url: "https://claude.example.com"', 'base-url: "claude.example.com"')
    reply = await mgmt.put("/config.yaml", data=bad.encode())
    assert reply.status == 422
    body = reply.json()
    assert body["error"] == "invalid_config"
    assert body["message"].startswith("claude-api-key[1].base-url: not a URL")
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_put_plaintext_secret_is_hashed(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(STYLED))
    text = STYLED.replace(SECRET_HASH, "a-new-plain-secret")
    assert (await mgmt.put("/config.yaml", data=text.encode())).status == 200
    on_disk = (tmp_path / "config.yaml").read_text()
    assert "a-new-plain-secret" not in on_disk and "$2" in on_disk
    assert (await Mgmt(mgmt.server, key="a-new-plain-secret").get("/debug")).status == 200


async def test_missing_file_is_404(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(STYLED))
    (tmp_path / "config.yaml").unlink()
    reply = await mgmt.get("/config.yaml")
    assert (reply.status, reply.json()) == (404, {"error": "not_found", "message": "config file not found"})
