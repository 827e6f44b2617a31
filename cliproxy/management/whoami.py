"""`GET /whoami`: who the presented management key is, and what this proxy offers the panel.

The web panel calls it right after the user typed a key: a 200 means the key works, `role`
tells it whether to offer any action (viewers only read), and the rest tells it which login
flows exist, so the panel names no provider itself:

    {"role": "admin"|"viewer", "version",
     "logins": {"browser": [{"type", "path"}], "device": [type], "import": [type]},
     "providers": [config section], "usage_history": bool, "logging_to_file": bool, "accounts": bool}
"""

from __future__ import annotations

from aiohttp import web

from cliproxy import __version__
from cliproxy.management.device_logins import DEVICE_LOGINS
from cliproxy.management.guard import MGMT_ROLE
from cliproxy.management.http import json_response
from cliproxy.management.oauth import KEY_IMPORTS, WEB_LOGINS
from cliproxy.management.providers import COMPAT, LISTS
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


@routes.get("/whoami")
async def get_whoami(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    config = services.holder.current.config
    return json_response(
        {
            "role": request.get(MGMT_ROLE, "viewer"),
            "version": __version__,
            "logins": {
                "browser": [{"type": t, "path": f"{login.web_name}-auth-url"} for t, (_, login) in WEB_LOGINS.items()],
                "device": sorted(DEVICE_LOGINS),
                "import": [kind.type for kind in KEY_IMPORTS],
            },
            "providers": [*LISTS, COMPAT],
            "usage_history": services.usage_db is not None,
            "logging_to_file": config.logging_to_file,
            "accounts": services.accounts.enabled,  # users, teams and invitations can be managed
        }
    )
