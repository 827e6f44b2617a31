"""Why routing could not serve a call, as typed exceptions; the API edge shapes each in the client's dialect.

Routing never builds a response body: it raises one of these with what the client must learn (status,
message, the OpenAI `type`/`code`/`param` where one is specific, headers such as `Retry-After`). The
only body that travels inside an error is an upstream's own error JSON, which a client of the same
dialect receives byte for byte, as CLIProxyAPI does.
"""

from __future__ import annotations

from typing import Any

from cliproxy.routing.failures import Failure
from cliproxy.translate import Dialect


class RoutingError(Exception):
    """A final answer that is an error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        err_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.details = details  # extra fields for the envelopes that carry them (OpenAI's)


class UnknownModel(RoutingError):
    """No credential offers the model the client named."""

    def __init__(self, model: str) -> None:
        super().__init__(400, f"unknown provider for model {model}", code="model_not_found", param="model")


class ActionNotServed(RoutingError):
    """The model exists, but none of its credentials serves this route (`/responses/compact` on Claude)."""

    def __init__(self, model: str, action: str) -> None:
        route = ACTION_ROUTES.get(action, action)
        super().__init__(501, f"{route} not supported for model {model}", code="not_implemented", param="model")


ACTION_ROUTES = {
    "compact": "/responses/compact",
    "search": "/alpha/search",
    "images_generations": "/images/generations",
    "images_edits": "/images/edits",
    "interactions": "/interactions",
}


class NotAllowed(RoutingError):
    """The client key's own policy refuses the call (scope, rate, concurrency, allowance, budget)."""


class NoCredentials(RoutingError):
    """Credentials exist for the model but none could be tried (all disabled or excluded)."""

    def __init__(self, model: str, providers: tuple[str, ...]) -> None:
        message = (
            f"auth_not_found: no auth available (providers={','.join(providers)}, model={model}); "
            "check the credentials' state via /v0/management/credential-status"
        )
        super().__init__(503, message, err_type="server_error", code="internal_server_error")


class AllCoolingDown(RoutingError):
    """Every credential for the model is cooling down; `Retry-After` says when the first one is back."""

    def __init__(self, model: str, provider: str, wait: float) -> None:
        seconds = max(1, int(wait + 0.999))
        minutes, secs = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        reset = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or hours else "") + f"{secs}s"
        super().__init__(
            429,
            f"All credentials for model {model} are cooling down via provider {provider}",
            err_type="rate_limit_error",
            code="model_cooldown",
            headers={"Retry-After": str(seconds)},
            details={"model": model, "reset_time": reset, "reset_seconds": seconds, "provider": provider},
        )
        self.seconds = seconds


class UpstreamFailed(RoutingError):
    """The last attempt failed upstream (after failover and retry rounds), or the client's own request
    was refused upstream (`ClientFault`). A client of `body_dialect` gets the upstream's JSON as-is."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.status, failure.message, headers=dict(failure.headers))
        self.body = failure.body
        self.body_dialect: Dialect = failure.dialect
        self.upstream_type = failure.err_type  # the upstream's own error type, for envelopes that keep it


class ClientFault(UpstreamFailed):
    """A request fault: the client's own mistake, returned at once (no failover, no cooldown)."""
