"""The built-in web control panel: `GET /management.html` and its files under `/management/`.

The panel is plain HTML, CSS and JavaScript modules shipped in the package (`panel/` beside this
module): no build step, no CDN, nothing fetched at run time. The files are read once when the
app is built and served from memory, so a request can only ever name one of them (no path
reaches the disk). The page holds no secret: the user types the management key, the panel keeps
it in the tab's `sessionStorage` and sends it with every `/v0/management` call.

Every answer carries strict headers: a Content-Security-Policy that allows only the panel's own
scripts and styles (no inline script, no eval, no other origin, no framing, no form posts),
`X-Frame-Options: DENY`, `no-store`, `nosniff` and no referrer. With
`remote-management.disable-control-panel: true` both routes answer 404, checked per request so a
reload switches the panel on or off. The routes sit on the root app beside the client API; they
add no middleware and no work to any other route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from cliproxy.runtime import RuntimeHolder

PANEL_DIR = Path(__file__).resolve().parent / "panel"
PAGE_PATH = "/management.html"
ASSET_PREFIX = "/management/"
PAGE_FILE = "management.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",  # forms are handled in script: a key must never end up in a URL
        "frame-ancestors 'none'",
    )
)
PANEL_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class PanelFiles:
    """The panel's files by URL path below `/management/` (`js/app.js`), with their content types."""

    files: Mapping[str, tuple[bytes, str]]

    @classmethod
    def load(cls, root: Path = PANEL_DIR) -> PanelFiles:
        """Read every servable file under `root` (a few dozen small files, before the server starts)."""
        files: dict[str, tuple[bytes, str]] = {}
        for path in sorted(root.rglob("*")):
            content_type = CONTENT_TYPES.get(path.suffix)
            if content_type is not None and path.is_file():
                files[path.relative_to(root).as_posix()] = (path.read_bytes(), content_type)
        return cls(files)

    def response(self, name: str) -> web.Response:
        found = self.files.get(name)
        if found is None:
            return web.Response(status=404, text="not found")
        body, content_type = found
        return web.Response(body=body, headers={"Content-Type": content_type, **PANEL_HEADERS})


def add_control_panel(app: web.Application, holder: RuntimeHolder, files: PanelFiles | None = None) -> None:
    """Serve the panel from `app` (the root app): the page, and its assets below `/management/`."""
    panel = files if files is not None else PanelFiles.load()

    def disabled() -> bool:
        return holder.current.config.remote_management.disable_control_panel

    async def page(request: web.Request) -> web.Response:
        if disabled():
            return web.Response(status=404, text="not found")
        return panel.response(PAGE_FILE)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if disabled() or name == PAGE_FILE:  # the page has one address
            return web.Response(status=404, text="not found")
        return panel.response(name)

    app.router.add_get(PAGE_PATH, page)
    app.router.add_get(ASSET_PREFIX + "{name:.+}", asset)
