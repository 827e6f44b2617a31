"""The control panel's files over HTTP: served from the package with strict headers, complete (every
module a page imports is served), nothing from another origin, and 404 when switched off."""

from __future__ import annotations

import posixpath
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from cliproxy.management.control_panel import PANEL_DIR, PanelFiles
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "host: 127.0.0.1\napi-keys: [sk-client-panel-1]\n" + MANAGEMENT_BLOCK
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^'"]*?from\s+["']([^"']+)["']""", re.MULTILINE)


async def get(server: TestServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, server.make_url(path)) as r:
        return r.status, dict(r.headers), await r.read()


def assert_strict(headers: dict[str, str]) -> None:
    policy = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'none'"
    assert "unsafe" not in policy  # no inline scripts or styles, no eval
    assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'none'"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_the_page_is_served_with_strict_headers_and_no_inline_script(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    status, headers, body = await get(server, "/management.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert_strict(headers)
    html = body.decode()
    assert '<script type="module" src="/management/js/app.js"></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script is a file
    assert not re.search(r"\son[a-z]+=", html) and "style=" not in html  # no inline handlers or styles
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", html)  # nothing from another origin
    head_status, _, head_body = await get(server, "/management.html", "HEAD")
    assert (head_status, head_body) == (200, b"")


async def test_every_file_and_every_module_import_is_served(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    files = PanelFiles.load().files
    assert {"management.html", "panel.css", "js/app.js", "js/pages/index.js"} <= set(files)
    imported = {"js/app.js"}  # the page loads it; every other module is imported by one
    for name in files:
        if name == "management.html":
            continue
        status, headers, body = await get(server, f"/management/{name}")
        assert status == 200, name
        assert_strict(headers)
        assert body == (PANEL_DIR / name).read_bytes()
        if name.endswith(".js"):
            assert headers["Content-Type"] == "text/javascript; charset=utf-8"
            text = body.decode()
            assert "innerHTML" not in text and "eval(" not in text  # text goes in as text, never as markup
            assert "fetch(" not in text or name == "js/api.js"  # one way out: the management API client
            for target in IMPORT.findall(text):
                assert target.startswith(("./", "../")), (name, target)  # the panel's own modules only
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
                assert resolved in files, (name, target)
                imported.add(resolved)
        if name.endswith(".css"):
            assert headers["Content-Type"] == "text/css; charset=utf-8"
            assert "url(" not in body.decode() and "@import" not in body.decode()
    assert imported == {name for name in files if name.endswith(".js")}  # no module left out


async def test_only_the_panel_files_are_reachable(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    for path in (
        "/management/nope.js",
        "/management/management.html",  # the page has one address
        "/management/%2e%2e/config.yaml",
        "/management/..%2fpanel.css",
        "/management/js/../../control_panel.py",
        "/management/",
    ):
        status, _, _ = await get(server, path)
        assert status == 404, path


async def test_disable_control_panel_answers_404_and_follows_reloads(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(CONFIG + "  disable-control-panel: true\n")
    for path in ("/management.html", "/management/js/app.js"):
        assert (await get(server, path))[0] == 404
    assert (await Mgmt(server).get("/whoami")).status == 200  # the API itself stays on

    config = tmp_path / "config.yaml"
    config.write_text(config.read_text().replace("disable-control-panel: true", "disable-control-panel: false"))
    assert server.app is not None
    assert (await server.app[SERVICES].reloader.reload_now()).ok
    assert (await get(server, "/management.html"))[0] == 200


async def test_without_a_management_secret_the_page_loads_and_the_api_is_off(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-client-panel-1]\n")
    assert (await get(server, "/management.html"))[0] == 200
    status, _, body = await get(server, "/v0/management/whoami")
    assert (status, body) == (404, b"")  # what the panel explains as "the management API is off"


def test_the_panel_files_are_package_data() -> None:
    """`pip install` (not only an editable checkout) must ship every file the panel serves."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cliproxy"]
    package = ROOT / "cliproxy"
    for name in PanelFiles.load().files:
        relative = (PANEL_DIR / name).relative_to(package).as_posix()
        assert any(fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns), relative
