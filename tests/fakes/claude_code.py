"""Recorded Claude Code traffic (copies of ../shared/fixtures), replayed the way Claude Code sends it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
# What the proxy or the HTTP client writes itself, or what carries the recording's own credential.
TRANSPORT = frozenset({"host", "content-length", "connection", "accept-encoding", "authorization", "x-api-key"})


def recorded_request(name: str = "claude_code_interactive") -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The recorded `/v1/messages` request of a capture: its header lines and its body."""
    for line in (CAPTURES / f"{name}.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("method") == "POST" and str(record.get("path_qs", "")).startswith("/v1/messages"):
            return [(k, v) for k, v in record["headers"]], record["body"]
    raise LookupError(name)


def replay_headers(name: str, client_key: str, **changes: str) -> dict[str, str]:
    """Claude Code's headers for a replay through the proxy: its own, with our client key."""
    headers = {k: v for k, v in recorded_request(name)[0] if k.lower() not in TRANSPORT}
    headers["x-api-key"] = client_key
    headers.update(changes)
    return headers
