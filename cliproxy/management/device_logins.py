"""Device-code logins from the web: the panel's `POST /device-login/{type}`, and CLIProxyAPI's
`GET /<provider>-auth-url` for providers whose only login is a device code (xAI, Kimi).

For a proxy on a headless machine a browser login's localhost redirect cannot come back, so the
user gets a code to enter on any device instead (the flow `cliproxy login --device` runs). Both
routes ask the provider for a code and answer at once, each in its own shape; one task then polls
the provider until the user approved, saves the credential (a re-login keeps the file's user
fields) and registers it with the runtime. The login is tracked like a browser login, in the same
`LoginSessions`: the page polls `GET /get-auth-status?state=` and cancels with
`DELETE /oauth-session?state=`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from cliproxy.credentials.kinds import AuthFileKind
from cliproxy.credentials.login import save_tokens
from cliproxy.credentials.oauth import DeviceCode, OAuthError, generate_state
from cliproxy.credentials.registry import BUILTIN
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response
from cliproxy.management.login_sessions import LoginSession, LoginSessions, is_cancelled
from cliproxy.management.oauth import OAUTH_LOGINS, main_app
from cliproxy.server.services import SERVICES, Services

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

DEVICE_LOGINS: dict[str, AuthFileKind[Any]] = {
    kind.type: kind for kind in BUILTIN.auth_files if kind.device_login is not None
}
# Providers whose web login is a device code (no browser login of their own): `/<web_name>-auth-url`.
DEVICE_WEB_LOGINS: dict[str, AuthFileKind[Any]] = {
    name: kind
    for name, kind in DEVICE_LOGINS.items()
    if kind.device_login is not None and kind.device_login.web_name and kind.code_login is None
}


async def start(request: web.Request, kind: AuthFileKind[Any]) -> tuple[LoginSession, DeviceCode]:
    """Ask the provider for a code and start polling for the user's approval; raises an API error."""
    require_admin(request)
    flow = kind.device_login
    assert flow is not None
    app = main_app(request)
    services = app[SERVICES]
    service = services.credentials
    if not service.started:
        raise api_error(503, "the credentials service is not running")
    try:
        device = await flow.start(service.session, service.settings.of(kind))
    except OAuthError as exc:
        log.warning("%s device login could not start: %s", kind.type, exc)
        raise api_error(502, "device login could not start", message=str(exc)) from None
    logins = app[OAUTH_LOGINS]
    session = LoginSession(
        state=f"{flow.state_prefix}{generate_state()}", provider=kind.type, verifier="", redirect_uri=""
    )
    logins.add(session)
    logins.spawn(_approved(services, logins, session, kind, device), f"device-{kind.type}")
    return session, device


async def _approved(
    services: Services, logins: LoginSessions, session: LoginSession, kind: AuthFileKind[Any], device: DeviceCode
) -> None:
    """Poll until approved (or the code expires), then save and register; a cancelled session stops."""
    service = services.credentials
    flow = kind.device_login
    assert flow is not None
    poll = asyncio.ensure_future(flow.poll(service.session, service.settings.of(kind), device, flow.timeout_seconds))
    try:
        while not poll.done():
            await asyncio.wait({poll}, timeout=logins.poll_seconds)
            if is_cancelled(session):
                return
        path, _ = await save_tokens(kind, poll.result(), services.holder.current.auth_dir, service.store)
        if is_cancelled(session):  # cancelled while saving: do not keep it
            await service.store.delete(path)
            return
        await service.register()  # live before the page hears "ok"
        session.file_name = path.name
        logins.finish(session, "ok")
        log.info("%s device login saved to %s", kind.type, path.name)
    except OAuthError as exc:
        logins.finish(session, "error", str(exc))
        log.warning("%s device login failed: %s", kind.type, exc)
    except Exception as exc:  # never leave the page waiting
        logins.finish(session, "error", "internal error")
        log.error("%s device login failed: %s", kind.type, type(exc).__name__)
    finally:
        if not poll.done():
            poll.cancel()


@routes.post("/device-login/{type}")
async def start_device_login(request: web.Request) -> web.Response:
    """The panel's start: `{"status", "state", "user_code", "verification_url", "expires_in"}`."""
    kind = DEVICE_LOGINS.get(request.match_info["type"])
    if kind is None or kind.device_login is None:
        raise api_error(404, "no device-code login for this provider")
    session, device = await start(request, kind)
    return json_response(
        {
            "status": "ok",
            "state": session.state,
            "user_code": device.user_code,
            "verification_url": device.verification_url,
            "expires_in": int(device.expires_in or kind.device_login.timeout_seconds),
        }
    )


def _auth_url_handler(kind: AuthFileKind[Any]) -> Any:
    async def auth_url(request: web.Request) -> web.Response:
        """CLIProxyAPI's start: `{"status", "flow": "device", "url", "user_code", "state", "expires_in"}`."""
        session, device = await start(request, kind)
        answer: dict[str, Any] = {
            "status": "ok",
            "flow": "device",
            "url": device.verification_url,
            "user_code": device.user_code,
            "state": session.state,
        }
        if device.expires_in is not None:
            answer["expires_in"] = int(device.expires_in)
        return json_response(answer)

    return auth_url


for _kind in DEVICE_WEB_LOGINS.values():
    assert _kind.device_login is not None
    routes.get(f"/{_kind.device_login.web_name}-auth-url")(_auth_url_handler(_kind))
