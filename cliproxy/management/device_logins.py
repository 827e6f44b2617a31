"""Device-code logins from the web UI, for providers whose only login is a device code (xAI, Kimi).

As CLIProxyAPI does, `GET /<provider>-auth-url` starts the flow and answers at once with
`{"flow": "device", "url", "user_code", "expires_in", "state"}` (the state prefixed `xai-`,
`kmi-` …); a background task polls the provider until the user approved, then saves and
registers the credential. The UI polls `get-auth-status` as for browser logins, and
`DELETE /oauth-session` stops the polling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from cliproxy.credentials.kinds import AuthFileKind, DeviceLogin
from cliproxy.credentials.login import save_tokens
from cliproxy.credentials.oauth import DeviceCode, OAuthError
from cliproxy.credentials.registry import BUILTIN
from cliproxy.management.guard import require_admin
from cliproxy.management.oauth import (
    OAUTH_LOGINS,
    LoginSession,
    credentials,
    error_answer,
    is_cancelled,
    json_answer,
    main_app,
)
from cliproxy.server.services import SERVICES

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Providers whose web login is a device code (no browser login of their own).
DEVICE_WEB_LOGINS: dict[str, tuple[AuthFileKind[Any], DeviceLogin[Any]]] = {
    kind.type: (kind, kind.device_login)
    for kind in BUILTIN.auth_files
    if kind.device_login is not None and kind.device_login.web_name and kind.code_login is None
}


async def _device_auth_url(request: web.Request, provider: str) -> web.Response:
    """Start a device-code login: the user opens the URL and enters the code; we poll meanwhile."""
    require_admin(request)
    app = main_app(request)
    logins, service = app[OAUTH_LOGINS], credentials(app)
    kind, flow = DEVICE_WEB_LOGINS[provider]
    try:
        device = await flow.start(service.session, service.settings.of(kind))
    except OAuthError as exc:
        log.warning("%s device login could not start: %s", provider, exc)
        return error_answer(502, f"device login could not start: {exc}")
    state = f"{flow.state_prefix}{time.time_ns()}"
    session = LoginSession(state=state, provider=provider, verifier="", redirect_uri="")
    logins.purge()
    logins.sessions[state] = session
    task = asyncio.create_task(_complete_device(app, session, device), name=f"oauth-{provider}")
    logins.tasks.add(task)
    task.add_done_callback(logins.tasks.discard)
    answer: dict[str, Any] = {
        "status": "ok",
        "flow": "device",
        "url": device.verification_url,
        "user_code": device.user_code,
        "state": state,
    }
    if device.expires_in is not None:
        answer["expires_in"] = int(device.expires_in)
    return json_answer(answer)


async def _complete_device(app: web.Application, session: LoginSession, device: DeviceCode) -> None:
    """Poll until the user approves (or the code expires), then save and register the credential."""
    logins, service = app[OAUTH_LOGINS], credentials(app)
    kind, flow = DEVICE_WEB_LOGINS[session.provider]
    poll = asyncio.ensure_future(flow.poll(service.session, service.settings.of(kind), device, flow.timeout_seconds))
    try:
        while not poll.done():  # a cancelled session stops the polling
            await asyncio.wait({poll}, timeout=logins.poll_seconds)
            if is_cancelled(session):
                poll.cancel()
                return
        tokens = poll.result()
        path, _ = await save_tokens(kind, tokens, app[SERVICES].holder.current.auth_dir, service.store)
        if is_cancelled(session):
            await service.store.delete(path)
            return
        session.file_name = path.name
        logins.finish(session, "ok")
        service.changed()
    except OAuthError as exc:
        logins.finish(session, "error", str(exc))
        log.warning("%s device login failed: %s", session.provider, exc)
    except Exception as exc:
        logins.finish(session, "error", "internal error")
        log.exception("%s device login failed: %s", session.provider, exc.__class__.__name__)
    finally:
        if not poll.done():
            poll.cancel()


def _device_auth_url_handler(provider: str) -> Any:
    async def auth_url(request: web.Request) -> web.Response:
        return await _device_auth_url(request, provider)

    return auth_url


for _type, (_kind, _flow) in DEVICE_WEB_LOGINS.items():
    routes.get(f"/{_flow.web_name}-auth-url")(_device_auth_url_handler(_type))
