"""`make bench`: run every benchmark script in this folder, one after the other, with its defaults.

Each script is standalone (`python bench/<name>.py`) and prints its own numbers and ratios; this
entry point only runs them in a stable order so one command reports everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    status = 0
    for script in sorted(here.glob("*.py")):
        if script.name == Path(__file__).name:
            continue
        print(f"== {script.name}", flush=True)
        status |= subprocess.run([sys.executable, str(script)], check=False).returncode
        print(flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
