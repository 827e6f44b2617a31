"""OAuth logins from the web UI and key imports, for every provider of the registry that has them.

As in CLIProxyAPI: `GET /<provider>-auth-url` registers a pending login (state → provider, PKCE
verifier) and answers with the authorize URL at once. The browser comes back to the provider's
fixed localhost redirect URI; with `?is_webui=1` a throwaway forwarder on that port sends it on
to this server's `/<provider>/callback` page, otherwise the user pastes the final URL into
`oauth-callback`. Both write the hand-off file `<auth-dir>/.oauth-<provider>-<state>.oauth`
(CLIProxyAPI's format, so its tooling keeps working), which the login's task polls, then
exchanges the code, saves the credential (re-login keeps user fields) and registers it with the
runtime. The UI polls `get-auth-status` (device-code logins share it, `device_logins.py`; in a
cluster any process answers it, `login_sessions.py`). A
provider whose files hold an uploaded key (a Google service account) gets `POST /<type>/import`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.config.write import atomic_write_bytes
from cliproxy.credentials.kinds import AuthFileKind, CodeLogin
from cliproxy.credentials.login import finish_code_login, save_login
from cliproxy.credentials.oauth import (
    SUCCESS_PAGE,
    CallbackResult,
    OAuthError,
    generate_pkce,
    generate_state,
    parse_redirect_url,
    validate_state,
)
from cliproxy.credentials.registry import BUILTIN
from cliproxy.credentials.service import CredentialService
from cliproxy.management.guard import require_admin
from cliproxy.management.login_sessions import (
    LoginMirror,
    LoginSession,
    LoginSessions,
    MirrorUnavailable,
    is_cancelled,
)
from cliproxy.server.services import SERVICES

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Providers with a browser login; `oauth-callback` accepts each one's aliases.
WEB_LOGINS: dict[str, tuple[AuthFileKind[Any], CodeLogin[Any]]] = {
    kind.type: (kind, kind.code_login) for kind in BUILTIN.auth_files if kind.code_login is not None
}
PROVIDER_NAMES: dict[str, str] = {alias: t for t, (_, login) in WEB_LOGINS.items() for alias in login.aliases}
KEY_IMPORTS = [kind for kind in BUILTIN.auth_files if kind.import_key is not None]
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


OAUTH_LOGINS = web.AppKey("oauth_logins", LoginSessions)


def json_answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=jsonio.dumps(data), status=status, content_type="application/json")


def error_answer(status: int, message: str) -> web.Response:
    return json_answer({"error": message}, status)


def credentials(app: web.Application) -> CredentialService:
    return app[SERVICES].credentials


def handoff_path(auth_dir: Path, provider: str, state: str) -> Path:
    return auth_dir / f".oauth-{WEB_LOGINS[provider][1].web_name}-{validate_state(state)}.oauth"


async def write_handoff(auth_dir: Path, provider: str, result: CallbackResult) -> None:
    data = json.dumps({"code": result.code, "state": result.state, "error": result.error}).encode()
    path = handoff_path(auth_dir, provider, result.state)
    await asyncio.to_thread(auth_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(atomic_write_bytes, path, data, mode=0o600)


def _read_handoff(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return data if isinstance(data, dict) else {}


async def _complete(request_app: web.Application, session: LoginSession) -> None:
    """Wait for the hand-off file, exchange the code, save and register the credential."""
    logins = request_app[OAUTH_LOGINS]
    service = credentials(request_app)
    auth_dir = request_app[SERVICES].holder.current.auth_dir
    path = handoff_path(auth_dir, session.provider, session.state)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + logins.wait_seconds
    try:
        data: dict[str, Any] | None = None
        while session.status == "pending":
            data = await asyncio.to_thread(_read_handoff, path)
            if data is not None or loop.time() > deadline:
                break
            await asyncio.sleep(logins.poll_seconds)
        if session.status != "pending":
            return
        if data is None:
            logins.finish(session, "error", "Timeout waiting for OAuth callback")
            return
        result = CallbackResult(
            code=str(data.get("code") or ""), state=str(data.get("state") or ""), error=str(data.get("error") or "")
        )
        saved = await finish_code_login(
            session.provider,
            result,
            session=service.session,
            settings=service.settings,
            auth_dir=auth_dir,
            expected_state=session.state,
            verifier=session.verifier,
            redirect_uri=session.redirect_uri,
            store=service.store,
        )
        if is_cancelled(session):  # cancelled while exchanging: do not keep it
            await service.store.delete(saved)
            return
        await service.register()  # live before the page hears "ok"
        session.file_name = saved.name
        logins.finish(session, "ok")
    except OAuthError as exc:
        logins.finish(session, "error", str(exc))
        log.warning("%s web login failed: %s", session.provider, exc)
    except Exception as exc:
        logins.finish(session, "error", "internal error")
        log.exception("%s web login failed: %s", session.provider, exc.__class__.__name__)
    finally:
        await logins.stop_forwarder(session.forwarder_port)


async def _auth_url(request: web.Request, provider: str) -> web.Response:
    require_admin(request)
    app = main_app(request)
    logins, service = app[OAUTH_LOGINS], credentials(app)
    kind, login = WEB_LOGINS[provider]
    settings = service.settings.of(kind)
    pkce, state = generate_pkce(), generate_state()
    port, path = login.callback(settings)
    redirect_uri = f"http://localhost:{port}{path}"
    url = login.authorize_url(settings, pkce, state, redirect_uri)
    session = LoginSession(state=state, provider=provider, verifier=pkce.verifier, redirect_uri=redirect_uri)
    if request.query.get("is_webui", "").strip().lower() in TRUE_WORDS:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        server_port = int(sockname[1]) if sockname else app[SERVICES].holder.current.config.port
        scheme = "https" if app[SERVICES].holder.current.config.tls.enable else "http"
        target = f"{scheme}://127.0.0.1:{server_port}/{login.web_name}/callback"
        try:
            await logins.start_forwarder(port, target)
        except OAuthError as exc:
            return error_answer(500, str(exc))
        session.forwarder_port = port
    logins.add(session)
    logins.spawn(_complete(app, session), f"oauth-{provider}")
    return json_answer({"status": "ok", "url": url, "state": state})


def main_app(request: web.Request) -> web.Application:
    """The top-level app (the management sub-app's parent), where the login state lives."""
    for app in reversed(request.match_info.apps):
        if OAUTH_LOGINS in app:
            return app
    raise web.HTTPServiceUnavailable(body=jsonio.dumps({"error": "oauth logins unavailable"}))


def _auth_url_handler(provider: str) -> Any:
    async def auth_url(request: web.Request) -> web.Response:
        return await _auth_url(request, provider)

    return auth_url


for _type, (_kind, _login) in WEB_LOGINS.items():
    routes.get(f"/{_login.web_name}-auth-url")(_auth_url_handler(_type))


@routes.get("/get-auth-status")
async def get_auth_status(request: web.Request) -> web.Response:
    state = request.query.get("state", "").strip()
    if not state:
        return json_answer({"status": "error", "error": "state is required"}, 400)
    try:  # this process's login, or (shared state) the copy of another process's
        session = await main_app(request)[OAUTH_LOGINS].status(state)
    except MirrorUnavailable as exc:
        return json_answer({"status": "error", "error": str(exc)}, 503)
    if session is None:
        return json_answer({"status": "error", "error": "unknown or expired state"}, 404)
    if session.status == "pending":
        return json_answer({"status": "wait"})
    if session.status == "ok":
        return json_answer({"status": "ok", "file": session.file_name})
    return json_answer({"status": "error", "error": session.error or "oauth flow was cancelled"})


@routes.delete("/oauth-session")
async def cancel_oauth_session(request: web.Request) -> web.Response:
    require_admin(request)
    try:  # here, or (shared state) by the process that owns the login
        known = await main_app(request)[OAUTH_LOGINS].cancel(request.query.get("state", "").strip())
    except MirrorUnavailable as exc:
        return error_answer(503, str(exc))
    return json_answer({"status": "ok"}) if known else error_answer(404, "unknown or expired state")


async def _callback_params(request: web.Request) -> dict[str, str]:
    params = {k: v for k, v in request.query.items()}
    if request.method == "POST" and request.can_read_body:
        try:
            body = await request.json(loads=jsonio.loads)
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update({k: str(v) for k, v in body.items() if v is not None})
    return params


@routes.get("/oauth-callback")
@routes.post("/oauth-callback")
async def oauth_callback(request: web.Request) -> web.Response:
    """The user pastes the redirect URL (or code/state) when the browser could not reach us.

    Keyless (`guard.KEYLESS_PATHS`): it only delivers a code for a pending, unguessable state.
    """
    params = await _callback_params(request)
    code, state, error = params.get("code", ""), params.get("state", ""), params.get("error", "")
    if params.get("redirect_url", "").strip():
        try:
            parsed = parse_redirect_url(params["redirect_url"])
        except OAuthError:
            return error_answer(400, "invalid redirect_url")
        code, state, error = parsed.code or code, parsed.state or state, parsed.error or error
    code, _, fragment = code.strip().partition("#")
    state = state.strip() or fragment.strip()
    if not state:
        return error_answer(400, "state is required")
    try:
        validate_state(state)
    except OAuthError:
        return error_answer(400, "invalid state")
    if not code and not error:
        return error_answer(400, "code or error is required")
    provider = PROVIDER_NAMES.get(params.get("provider", "").strip().lower())
    if params.get("provider") and provider is None:
        return error_answer(400, "unsupported provider")
    try:  # another process's login too (shared state): its task reads the shared auth-dir
        session = await main_app(request)[OAUTH_LOGINS].status(state)
    except MirrorUnavailable as exc:
        return error_answer(503, str(exc))
    if session is None:
        return error_answer(404, "unknown or expired state")
    if provider is not None and provider != session.provider:
        return error_answer(400, "provider does not match state")
    if session.status == "ok":
        return error_answer(409, "oauth flow is already completed")
    if session.status == "error":
        return error_answer(409, session.error or "oauth flow is not pending")
    if session.status != "pending":
        return error_answer(409, "oauth flow is not pending")
    auth_dir = main_app(request)[SERVICES].holder.current.auth_dir
    await write_handoff(auth_dir, session.provider, CallbackResult(code=code, state=state, error=error))
    return json_answer({"status": "ok"})


async def _landing(request: web.Request, provider: str) -> web.Response:
    """`/<provider>/callback` (`/anthropic/callback` …): hand the code over for a pending state only."""
    app = request.app
    state = request.query.get("state", "").strip()
    code, _, fragment = request.query.get("code", "").partition("#")
    state = state or fragment
    error = request.query.get("error", "")
    try:
        validate_state(state)
        session = await app[OAUTH_LOGINS].status(state)  # a worker may take another's landing
        if session is not None and session.provider == provider and session.status == "pending" and (code or error):
            result = CallbackResult(code=code, state=state, error=error)
            await write_handoff(app[SERVICES].holder.current.auth_dir, provider, result)
    except (OAuthError, MirrorUnavailable):
        pass
    return web.Response(text=SUCCESS_PAGE, content_type="text/html")


def _landing_handler(provider: str) -> Any:
    async def landing(request: web.Request) -> web.Response:
        return await _landing(request, provider)

    return landing


async def _import_key(request: web.Request, kind: AuthFileKind[Any]) -> web.Response:
    """Upload a key (multipart `file` or a raw JSON body) as a credential of `kind`'s type."""
    require_admin(request)
    options: dict[str, str] = dict(request.query)
    raw: bytes | None = None
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                if key == "file" or raw is None:
                    raw = value.file.read()
            elif isinstance(value, str):
                options.setdefault(key, value)
    else:
        raw = await request.read()
    if not raw:
        return error_answer(400, "file is required")
    try:
        key_data = json.loads(raw)
    except ValueError:
        return error_answer(400, "invalid service account JSON")
    if not isinstance(key_data, dict) or kind.import_key is None:
        return error_answer(400, "invalid service account JSON")
    try:
        data = kind.import_key(key_data, options)
    except OAuthError as exc:
        return error_answer(400, str(exc))
    service = credentials(main_app(request))
    name = kind.credential_filename(data)
    path = await save_login(main_app(request)[SERVICES].holder.current.auth_dir, name, data, store=service.store)
    await service.register()  # live before the caller hears "ok"
    log.info("imported a %s key for project %s into %s", kind.type, data.get("project_id"), path.name)
    return json_answer(
        {
            "status": "ok",
            "auth-file": path.name,
            "project_id": data.get("project_id"),
            "email": data.get("email"),
            "location": data.get("location"),
        }
    )


def _import_handler(kind: AuthFileKind[Any]) -> Any:
    async def import_key(request: web.Request) -> web.Response:
        return await _import_key(request, kind)

    return import_key


for _kind in KEY_IMPORTS:
    routes.post(f"/{_kind.type}/import")(_import_handler(_kind))


async def _logins_ctx(app: web.Application) -> Any:
    yield
    await app[OAUTH_LOGINS].close()


def add_web_logins(app: web.Application, mirror: LoginMirror | None = None) -> None:
    """On the root app: the login state and the providers' landing pages (their redirect URIs are
    fixed paths outside `/v0/management`); `mirror` shares the logins' status across a cluster."""
    app[OAUTH_LOGINS] = LoginSessions(mirror)
    for provider, (_, login) in WEB_LOGINS.items():
        app.router.add_get(f"/{login.web_name}/callback", _landing_handler(provider))
    app.cleanup_ctx.append(_logins_ctx)
