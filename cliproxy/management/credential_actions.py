"""One credential, now: `POST /credentials/{auth_index}/refresh` and `POST /credentials/{auth_index}/test`.

The web panel's "refresh now" and "test now". Both are admin only: a refresh spends a single-use
refresh token, and a test spends a request of the provider's quota.

* **refresh** gets a new access token for an auth file: a refresh-token exchange through the
  refresher (joining one already in flight, so a single-use token is never spent twice), or a
  freshly minted token for service-account keys. The new token goes into the file and the live
  runtime as an automatic refresh would. API keys have nothing to refresh (400).
* **test** sends one minimal live request with the credential (`routing.probe`): no routing, no
  cooldown and no usage record, so a test never changes what the proxy does next. The answer is
  `{"result": "ok"|"failed"|"skipped", "detail", "model", ...}` with status 200 either way.
"""

from __future__ import annotations

import logging

from aiohttp import web

from cliproxy.credentials.files import format_time
from cliproxy.credentials.oauth import OAuthError
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response
from cliproxy.routing.credentials import Credential
from cliproxy.routing.probe import probe
from cliproxy.server.services import SERVICES, Services

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _credential(request: web.Request) -> tuple[Services, Credential]:
    services = request.config_dict[SERVICES]
    wanted = request.match_info["auth_index"]
    for cred in services.holder.current.catalog.credentials:
        if cred.auth_index == wanted:
            return services, cred
    raise api_error(404, "credential not found")


@routes.post("/credentials/{auth_index}/refresh")
async def refresh_credential(request: web.Request) -> web.Response:
    require_admin(request)
    services, cred = _credential(request)
    source = cred.source
    if source is None:
        raise api_error(400, "API keys have no token to refresh")
    service = services.credentials
    kind = service.registry.auth_file(source.type)
    if kind is None or (kind.refresh is None and kind.mint is None):
        raise api_error(400, f"{source.type} credentials cannot be refreshed")
    if not service.started:
        raise api_error(503, "the credentials service is not running")
    try:
        if kind.mint is not None:
            await service.access_token(source, force_refresh=True)
            return json_response({"status": "ok", "name": cred.name})
        fresh = await service.refresher.refresh_now(service.current(source))
    except OAuthError as exc:
        log.warning("manual refresh of %s failed: %s", cred.id, exc)
        raise api_error(502, "refresh failed", message=str(exc)) from None
    return json_response(
        {
            "status": "ok",
            "name": cred.name,
            "expires": format_time(fresh.expires_at) if fresh.expires_at else None,
            "last_refresh": format_time(fresh.last_refresh) if fresh.last_refresh else None,
        }
    )


@routes.post("/credentials/{auth_index}/test")
async def test_credential(request: web.Request) -> web.Response:
    require_admin(request)
    services, cred = _credential(request)
    service = services.credentials if services.credentials.started else None
    row = await probe(cred, services.upstreams, service)
    row["name"] = cred.name
    log.info("manual test of %s: %s (%s)", cred.id, row["result"], row.get("detail", ""))
    return json_response(row)
