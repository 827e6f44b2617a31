"""Run the real `cliproxy` CLI with the test-only slow route added to the app it serves."""

from __future__ import annotations

import sys

from aiohttp import web

from cliproxy.cli import main
from cliproxy.runtime import RuntimeHolder
from cliproxy.server import serve
from tests.server import slow_route

build_app = serve.build_app


def build_with_slow_route(holder: RuntimeHolder, *, worker: int | None = None) -> web.Application:
    app = build_app(holder, worker=worker)
    slow_route.install(app)
    return app


serve.build_app = build_with_slow_route  # type: ignore[assignment]

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
