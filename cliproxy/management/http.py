"""Response and request helpers shared by the management resource modules.

Errors are raised as aiohttp HTTP exceptions carrying CLIProxyAPI's JSON bodies, so a handler
can stop anywhere (inside a config mutation too) and the file stays untouched.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy import jsonio

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    413: web.HTTPRequestEntityTooLarge,
    422: web.HTTPUnprocessableEntity,
    500: web.HTTPInternalServerError,
    502: web.HTTPBadGateway,
    503: web.HTTPServiceUnavailable,
}

OK: dict[str, Any] = {"status": "ok"}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=jsonio.dumps(data), status=status, content_type="application/json")


def api_error(status: int, error: str, **extra: Any) -> web.HTTPException:
    """`{"error": error, ...extra}` with `status`, ready to raise."""
    cls = _ERRORS.get(status, web.HTTPInternalServerError)
    if cls is web.HTTPRequestEntityTooLarge:
        exc: web.HTTPException = web.HTTPRequestEntityTooLarge(
            max_size=0, actual_size=0, text=jsonio.dumps({"error": error, **extra}).decode()
        )
    else:
        exc = cls(text=jsonio.dumps({"error": error, **extra}).decode())
    exc.content_type = "application/json"
    return exc


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; 400 `invalid body` when it is not JSON."""
    raw = await request.read()
    try:
        return jsonio.loads(raw)
    except ValueError:
        raise api_error(400, "invalid body") from None


def text_field(body: Any, name: str) -> str:
    """`body[name]` when the body is a JSON object and that value a string, else ""."""
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def query_index(request: web.Request, name: str = "index") -> int | None:
    """`?index=` as an int (Go's `Sscanf("%d")` accepts a leading integer), else None."""
    raw = request.query.get(name, "").strip()
    digits = raw[1:] if raw[:1] in "+-" else raw
    end = len(digits) - len(digits.lstrip("0123456789"))
    if not end:
        return None
    return int(raw[: end + (len(raw) - len(digits))])


def panel_link(request: web.Request, fragment: str) -> str:
    """An address of this proxy's web panel (`#/<fragment>`), as the caller reached the proxy."""
    return f"{request.scheme}://{request.host}/management.html#/{fragment}"
