"""Typed application state (`web.AppKey`), importable by every layer without import cycles."""

from __future__ import annotations

from aiohttp import web

from cliproxy.runtime import RuntimeHolder

RUNTIME = web.AppKey("runtime", RuntimeHolder)
