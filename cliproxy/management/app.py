"""The management sub-application: `/v0/management`, behind its own guard.

Being a sub-app keeps the guard off the client hot path. Each resource module has its
`routes: web.RouteTableDef`; they are all mounted here.
"""

from __future__ import annotations

from aiohttp import web

from cliproxy.accounts.service import Accounts
from cliproxy.management import (
    accounts_api,
    api_call,
    api_keys,
    auth_files,
    client_keys,
    config_api,
    config_file,
    credential_actions,
    credential_status,
    device_logins,
    logs_api,
    models_api,
    oauth,
    oauth_maps,
    providers,
    scalars,
    teams_api,
    usage_api,
    usage_history,
    whoami,
)
from cliproxy.management.guard import GuardState, add_management_headers, management_guard
from cliproxy.management.roles import viewer_filter
from cliproxy.portal.answers import accounts_refusals
from cliproxy.runtime import RuntimeHolder

PREFIX = "/v0/management"
RESOURCES = (
    config_api,
    config_file,
    scalars,
    api_keys,
    providers,
    oauth_maps,
    auth_files,
    models_api,
    usage_api,
    logs_api,
    api_call,
    client_keys,
    credential_status,
    oauth,
    whoami,
    usage_history,
    credential_actions,
    device_logins,
    accounts_api,
    teams_api,
)


def build_management_app(
    holder: RuntimeHolder, *, guard: GuardState | None = None, accounts: Accounts | None = None
) -> web.Application:
    """The sub-app; its handlers find the shared services on the root app (`request.config_dict`).

    `guard` holds the failure counts and bans; the root app shares it with `/metrics`. With
    `accounts`, the panel session of a signed-in admin (or admin-viewer) user also opens the guard."""
    # The guard decides the role; the viewer filter then keeps viewers read-only and redacted.
    state = guard if guard is not None else GuardState()
    mgmt = web.Application(
        middlewares=[
            management_guard(holder=holder, state=state, accounts=accounts),
            viewer_filter(),
            accounts_refusals,
        ]
    )
    mgmt.on_response_prepare.append(add_management_headers)
    mgmt[usage_history.HISTORY_CACHE] = usage_history.HistoryCache()
    for resource in RESOURCES:
        mgmt.add_routes(resource.routes)
    return mgmt
