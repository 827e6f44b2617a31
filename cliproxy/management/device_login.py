"""Device-code logins from the web panel: `POST /device-login/{type}`.

For a proxy on a headless machine the browser login's localhost redirect cannot come back, so
the panel offers the provider's device-code flow (the one `cliproxy login --device` runs): this
endpoint asks the provider for a code and answers at once with what the user needs,
`{"status": "ok", "state", "user_code", "verification_url", "expires_in"}`. A task then polls the
provider until the user approved the code on any device, saves the credential (a re-login keeps
the file's user fields) and registers it with the runtime.

The login is tracked like a browser login, in the same `LoginSessions`: the panel polls
`GET /get-auth-status?state=` and cancels with `DELETE /oauth-session?state=`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from cliproxy.credentials.kinds import AuthFileKind
from cliproxy.credentials.login import save_tokens
from cliproxy.credentials.oauth import DeviceCode, OAuthError, generate_state
from cliproxy.credentials.registry import BUILTIN
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response
from cliproxy.management.oauth import OAUTH_LOGINS, LoginSession, LoginSessions
from cliproxy.server.services import SERVICES, Services

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

DEVICE_LOGINS: dict[str, AuthFileKind[Any]] = {
    kind.type: kind for kind in BUILTIN.auth_files if kind.device_login is not None
}
CANCEL_CHECK_SECONDS = 0.5


async def _approved(
    services: Services,
    logins: LoginSessions,
    session: LoginSession,
    kind: AuthFileKind[Any],
    device: DeviceCode,
) -> None:
    """Poll until approved, then save and register; a cancelled session stops the polling."""
    service = services.credentials
    flow = kind.device_login
    assert flow is not None
    poll = asyncio.ensure_future(flow.poll(service.session, service.settings.of(kind), device, flow.timeout_seconds))
    try:
        while not poll.done():
            if session.status != "pending":  # cancelled (`DELETE /oauth-session`)
                return
            await asyncio.wait({poll}, timeout=CANCEL_CHECK_SECONDS)
        path, _ = await save_tokens(kind, poll.result(), services.holder.current.auth_dir, service.store)
    except OAuthError as exc:
        if session.status == "pending":
            logins.finish(session, "error", str(exc))
        log.warning("%s device login failed: %s", kind.type, exc)
        return
    finally:
        poll.cancel()
    if session.status != "pending":  # cancelled while saving: do not keep it
        await service.store.delete(path)
        return
    session.file_name = path.name
    logins.finish(session, "ok")
    service.changed()
    log.info("%s device login saved to %s", kind.type, path.name)


def _track(logins: LoginSessions, session: LoginSession, work: Coroutine[Any, Any, None]) -> None:
    """Run the login's task where `LoginSessions.close` cancels it; a crash ends the session as an error."""
    task = asyncio.ensure_future(work)
    logins.tasks.add(task)

    def done(finished: asyncio.Task[None]) -> None:
        logins.tasks.discard(finished)
        error = None if finished.cancelled() else finished.exception()
        if error is not None:
            log.error("%s device login failed: %s", session.provider, type(error).__name__)
        if session.status == "pending":  # never leave the panel waiting
            logins.finish(session, "error", "internal error")

    task.add_done_callback(done)


@routes.post("/device-login/{type}")
async def start_device_login(request: web.Request) -> web.Response:
    require_admin(request)
    kind = DEVICE_LOGINS.get(request.match_info["type"])
    if kind is None or kind.device_login is None:
        raise api_error(404, "no device-code login for this provider")
    services = request.config_dict[SERVICES]
    service = services.credentials
    if not service.started:
        raise api_error(503, "the credentials service is not running")
    flow = kind.device_login
    try:
        device = await flow.start(service.session, service.settings.of(kind))
    except OAuthError as exc:
        raise api_error(502, "device login failed", message=str(exc)) from None
    logins = request.config_dict[OAUTH_LOGINS]
    state = generate_state()
    session = LoginSession(state=state, provider=kind.type, verifier="", redirect_uri="")
    logins.purge()
    logins.sessions[state] = session
    _track(logins, session, _approved(services, logins, session, kind, device))
    return json_response(
        {
            "status": "ok",
            "state": state,
            "user_code": device.user_code,
            "verification_url": device.verification_url,
            "expires_in": int(flow.timeout_seconds),
        }
    )
