"""A progress line for operator commands that take a while (`auth test` over many credentials).

On a terminal the line is rewritten in place on stderr and cleared at the end, so the table or
JSON on stdout stays clean; elsewhere it is off unless asked for (`--progress`), and then each
step is a line of its own, which reads well in a CI log.
"""

from __future__ import annotations

import sys
from typing import TextIO

CLEAR_LINE = "\r\x1b[K"


class ProgressLine:
    """`auth test 3/40: claude-api-key[2]` for each step of a known number of steps."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty()
        self.enabled = (self.terminal if enabled is None else enabled) and total > 0
        self.done_steps = 0

    def step(self, name: str) -> None:
        """Starting the next step, called `name`."""
        self.done_steps += 1
        if not self.enabled:
            return
        text = f"{self.label} {self.done_steps}/{self.total}: {name}"
        self.stream.write(f"{CLEAR_LINE}{text}" if self.terminal else text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """Clear the line (on a terminal) before the results are printed."""
        if self.enabled and self.terminal and self.done_steps:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
