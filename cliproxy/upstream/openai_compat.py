"""OpenAI-compatible providers: `{base-url}/chat/completions`, Bearer only when a key is set.

The `openai-compatibility` section lists providers, each with its own `api-key-entries`: as in
CLIProxyAPI, every key entry is one credential, and a provider without entries gets one keyless
credential. Its provider key is `openai-compatible-<lower(name)>`; listings show `name` as owner.
With `support-prompt-cache-key: true` every request carries a `prompt_cache_key`, as CLIProxyAPI
sends it: the client's own (a Responses client's too), else one derived from the conversation
(its session key), so a provider that routes by it keeps a conversation on one cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cliproxy.config.model import Config
from cliproxy.config.sections import CompatKeyEntry
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import KeyEntry
from cliproxy.upstream.base import (
    GENERATE_ACTIONS,
    Executor,
    OutgoingRequest,
    UpstreamCredential,
    join_url,
    openai_path,
)

log = logging.getLogger(__name__)

SECTION = "openai-compatibility"


class OpenAICompatExecutor(Executor):
    kind: ClassVar[str] = SECTION
    dialect: ClassVar[Dialect] = Dialect.CHAT
    # As CLIProxyAPI does, `/responses/compact` and the images routes go to the provider's own.
    actions: ClassVar[frozenset[str]] = GENERATE_ACTIONS | {"compact", "images_generations", "images_edits"}

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(cred.base_url, openai_path(action, "/chat/completions"))

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"Authorization": "Bearer " + cred.api_key} if cred.api_key else {}


class PromptCacheKey:
    """The `RequestShaper` of providers with `support-prompt-cache-key`: a `prompt_cache_key` on every request."""

    def wants(
        self, client_dialect: Dialect, client_headers: Mapping[str, str], client_body: Mapping[str, Any], action: str
    ) -> bool:
        if action != "generate":
            return False
        own = client_body.get("prompt_cache_key")
        # A chat client's own key passes through untouched; anything else needs one written.
        return not (client_dialect is Dialect.CHAT and isinstance(own, str) and own)

    def shape(self, request: OutgoingRequest) -> None:
        body = request.body
        own = request.client_body.get("prompt_cache_key")
        if isinstance(own, str) and own:  # a Responses client's, lost in translation
            body["prompt_cache_key"] = own
        elif request.session:
            body["prompt_cache_key"] = "cliproxy-" + hashlib.sha256(request.session.encode()).hexdigest()[:32]


_PROMPT_CACHE_KEY = PromptCacheKey()


@dataclass(frozen=True)
class CompatSection:
    """The `openai-compatibility` list: providers, each with several keys."""

    section: str
    kind: str
    executor: Executor
    status_toggle: str = "disabled"  # the management API switches the whole provider off

    def entries(self, config: Config) -> Iterator[KeyEntry]:
        for index, compat in enumerate(config.openai_compatibility):
            if not compat.base_url:
                log.warning("%s[%d]: dropped (base-url is required)", self.section, index)
                continue
            name = compat.name
            provider = f"openai-compatible-{name.lower()}" if name else self.section
            id_kind = f"{self.section}:{name}" if name else self.section
            keys: tuple[CompatKeyEntry | None, ...] = compat.api_key_entries or (None,)
            for sub, key_entry in enumerate(keys):
                api_key = key_entry.api_key if key_entry else ""
                own_proxy = key_entry.proxy_url if key_entry else ""
                yield KeyEntry(
                    section=self.section,
                    index=index,
                    key_index=sub if key_entry else None,
                    label=f"{self.section}[{index}]" + (f".api-key-entries[{sub}]" if key_entry else ""),
                    kind=self.kind,
                    provider=provider,
                    id_kind=id_kind,
                    identity=(id_kind, api_key, compat.base_url, own_proxy),
                    executor=self.executor,
                    owned_by=name or self.section,
                    api_key=api_key,
                    base_url=compat.base_url,
                    prefix=compat.prefix,
                    priority=compat.priority,
                    weight=key_entry.weight if key_entry else None,
                    proxy_url=own_proxy,
                    headers=compat.headers,
                    models=compat.models,
                    builtin_models="",
                    excluded_models=compat.excluded_models,
                    disabled=compat.disabled,
                    disable_cooling=compat.disable_cooling,
                    request_retry=compat.request_retry,
                    scoped_errors=compat.request_scoped_errors,
                    timeouts=compat.upstream_timeouts,
                    shaper=_PROMPT_CACHE_KEY if compat.support_prompt_cache_key else None,
                )


PROVIDER = CompatSection(section=SECTION, kind=SECTION, executor=OpenAICompatExecutor())
