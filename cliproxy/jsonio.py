"""JSON on the hot path: orjson, behind two names so the rest of the code never imports it directly."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises `JSONDecodeError` (a ValueError) on bad input."""
    return orjson.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact JSON as bytes (no spaces, UTF-8, non-ASCII kept)."""
    return orjson.dumps(obj)
