"""Temporary wiring of the credentials service into the aiohttp app (the `FEATURES` hook).

The composition root is being rewritten; until it builds these itself, this is all it takes:
one `CredentialStore` and one `CredentialService` per app, bound to every runtime snapshot,
started and stopped with the app, and reloading the runtime when a credential changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from cliproxy.appkeys import CREDENTIALS, RELOADER, RUNTIME
from cliproxy.credentials.registry import BUILTIN, ProviderSettings
from cliproxy.credentials.service import CredentialService
from cliproxy.credentials.store import CredentialStore
from cliproxy.watch import reload_now


def install(app: web.Application) -> None:
    holder = app[RUNTIME]

    async def reload() -> None:
        if RELOADER in app:
            await reload_now(app)

    service = CredentialService(
        store=CredentialStore(BUILTIN),
        settings=ProviderSettings.from_env(registry=BUILTIN),
        auth_files=lambda: holder.current.auth_files,
        on_changed=reload,
    )
    app[CREDENTIALS] = service
    service.bind(holder.current)
    holder.listeners.append(service.on_swap)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app.cleanup_ctx.append(lifecycle)
