"""Run the real `cliproxy` CLI with the test-only slow route added to `FEATURES`."""

from __future__ import annotations

import sys

from cliproxy.cli import main
from cliproxy.server import app

app.FEATURES = (*app.FEATURES, "tests.server.slow_route:install")

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
