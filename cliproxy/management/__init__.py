"""The management API `/v0/management`: an aiohttp sub-application behind its own guard.

Being a sub-app keeps the guard off the client hot path. Each resource module exposes
`routes: web.RouteTableDef`; list it in `RESOURCE_MODULES` and its routes are mounted here.
"""

from __future__ import annotations

import importlib

from aiohttp import web

from cliproxy.appkeys import CONFIG_WRITER, MGMT_GUARD
from cliproxy.management.guard import GuardState, add_management_headers, management_guard
from cliproxy.management.roles import viewer_filter

PREFIX = "/v0/management"

# One module per resource group, each with `routes: web.RouteTableDef`.
RESOURCE_MODULES: tuple[str, ...] = (
    "cliproxy.management.config_api",
    "cliproxy.management.config_file",
    "cliproxy.management.scalars",
    "cliproxy.management.api_keys",
    "cliproxy.management.providers",
    "cliproxy.management.oauth_maps",
    "cliproxy.management.auth_files",
    "cliproxy.management.models_api",
    "cliproxy.management.usage_api",
    "cliproxy.management.logs_api",
    "cliproxy.management.api_call",
    "cliproxy.management.client_keys",
    "cliproxy.management.credential_status",
    "cliproxy.management.oauth",
)


def build_management_app() -> web.Application:
    # The guard decides the role; the viewer filter then keeps viewers read-only and redacted.
    mgmt = web.Application(middlewares=[management_guard(), viewer_filter()])
    mgmt[MGMT_GUARD] = GuardState()
    mgmt.on_response_prepare.append(add_management_headers)
    for name in RESOURCE_MODULES:
        routes: web.RouteTableDef = importlib.import_module(name).routes
        mgmt.add_routes(routes)
    return mgmt


def install(app: web.Application) -> None:
    """`FEATURES` hook: mount the management sub-app; its config writer lives on the root app."""
    from cliproxy.management import usage_api
    from cliproxy.management.config_writer import ConfigWriter

    app[CONFIG_WRITER] = ConfigWriter(app)
    usage_api.install(app)
    app.add_subapp(PREFIX, build_management_app())
