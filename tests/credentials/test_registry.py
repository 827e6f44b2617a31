"""The provider registry: complete entries, no provider names elsewhere, and the docs' worked example."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import sys
import typing
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer

from cliproxy.config.load import ConfigError, parse_config_text
from cliproxy.config.model import Config
from cliproxy.config.sections import ProviderKey
from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.kinds import AuthFileKind, require_tokens
from cliproxy.credentials.registry import BUILTIN, ProviderRegistry, ProviderSettings
from cliproxy.credentials.store import CredentialStore, load_auth_dir
from cliproxy.routing.catalog import Catalog, build_routes
from cliproxy.routing.credentials import build_credential, builtin_models, synthesize
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.app import build_app
from cliproxy.translate import Dialect
from cliproxy.upstream.api_keys import ApiKeySection
from cliproxy.upstream.base import UpstreamCredential, join_url
from cliproxy.watch import load_runtime
from tests.conftest import write_config
from tests.fakes.upstreams import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "providers.md"


def test_every_registry_entry_is_complete() -> None:
    declared = {info.alias or name: info for name, info in Config.model_fields.items()}
    for section in BUILTIN.key_sections:
        assert section.kind and section.status_toggle in ("excluded-models", "disabled"), section
        if isinstance(section, ApiKeySection):
            assert section.section.endswith("-api-key") and section.owner
            assert section.executor.kind == section.kind and issubclass(section.entry, ProviderKey)
            if section.section in declared:  # a typed field: the registry names the model it validates with
                assert typing.get_args(declared[section.section].annotation)[0] is section.entry
            else:
                assert section.entry is ProviderKey
            assert section.kind in builtin_models(), f"{section.section}: no built-in models"
    settings = ProviderSettings.from_env({})
    for kind in BUILTIN.auth_files:
        assert kind.type and kind.owner and kind.type in builtin_models(), kind.type
        executor_type = typing.cast(type, kind.executor)
        assert issubclass(executor_type, AuthFileExecutor) and executor_type.kind == kind.type
        assert settings.of(kind) is not None
        assert (kind.refresh is None) == (kind.refresh_lead is None), "a refresh needs a lead time"
        assert kind.refresh is None or kind.mint is None, "tokens are refreshed or minted, not both"
        if kind.code_login or kind.device_login:
            assert kind.credential_json is not None, f"{kind.type}: a login must produce a file"
        if kind.code_login:
            assert kind.code_login.aliases and kind.code_login.web_name
        if kind.mint is not None:
            assert kind.account_type == "service_account"
    with pytest.raises(ValueError, match="share a type"):
        BUILTIN.with_providers(BUILTIN.auth_files[0])


OWN_FILES = [
    *sorted((ROOT / "cliproxy" / "credentials").glob("*.py")),
    *sorted((ROOT / "cliproxy" / "upstream").glob("*.py")),
    ROOT / "cliproxy" / "routing" / "credentials.py",
    ROOT / "cliproxy" / "auth_cli.py",
    *(ROOT / "cliproxy" / "management" / f"{m}.py" for m in ("auth_files", "auth_file_entries", "oauth", "providers")),
]


def test_provider_names_appear_only_in_their_own_modules() -> None:
    """No `if type == "claude"` chains: outside a provider's own module its name is not spelled."""
    names = re.compile(r"""["'](claude|codex|vertex)["']""")
    own_module = {ROOT / "cliproxy" / "upstream" / f"{n}.py" for n in ("claude", "codex", "vertex")}
    offenders = []
    for path in OWN_FILES:
        if path in own_module:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if names.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


# --------------------------------------------------------------------------- the docs' worked example


def docs_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)


def acme_module(tmp_path: Path) -> ModuleType:
    """The provider module exactly as `docs/providers.md` shows it."""
    (source,) = [b for b in docs_blocks() if b.startswith('"""Acme Inference')]
    path = tmp_path / "acme_provider.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("acme_provider", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["acme_provider"] = module
    spec.loader.exec_module(module)
    return module


def test_the_docs_registry_line_is_the_only_change() -> None:
    (block,) = [b for b in docs_blocks() if "BUILTIN = ProviderRegistry(" in b]
    listed = re.findall(r"(\w+)\.PROVIDER,", block)
    builtin = [type(s.executor).__module__.rpartition(".")[2] for s in BUILTIN.key_sections]
    assert listed == [*builtin, "acme"]


async def test_the_docs_api_key_provider_serves_requests_in_any_dialect(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    acme = acme_module(tmp_path)
    registry = BUILTIN.with_providers(acme.PROVIDER)
    upstream = FakeUpstream()
    up = await aiohttp_server(upstream.app())
    config_path = write_config(
        tmp_path,
        f"""
        api-keys: [sk-client-acme]
        auth-dir: {tmp_path / "auths"}
        acme-api-key:
          - api-key: sk-acme-0123
            base-url: {str(up.make_url("")).rstrip("/")}
            models:
              - name: acme-large-2
                alias: acme-large
        """,
    )
    # The composition root passes its registry to the catalog; a test builds that snapshot itself.
    runtime = load_runtime(config_path)
    creds = tuple(synthesize(runtime.config, registry))
    catalog = Catalog(credentials=creds, routes=build_routes(creds, force_prefix=False), by_id={c.id: c for c in creds})
    app = build_app(RuntimeHolder(dataclasses.replace(runtime, catalog=catalog)))
    proxy = await aiohttp_server(app)
    base = str(proxy.make_url("")).rstrip("/")

    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-client-acme", max_retries=0)
    assert "acme-large" in {m.id async for m in client.models.list()}
    reply = await client.chat.completions.create(model="acme-large", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    claude_client = anthropic.AsyncAnthropic(base_url=base, api_key="sk-client-acme", max_retries=0)
    message = await claude_client.messages.create(
        model="acme-large", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content  # an Anthropic client, answered by a chat upstream through the hub

    first, second = upstream.seen
    for seen in (first, second):
        assert seen.path == "/chat/completions" and seen.header("X-Acme-Key") == "sk-acme-0123"
        assert seen.json["model"] == "acme-large-2" and seen.header("Authorization") is None


def test_a_new_api_key_section_is_validated_with_yaml_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text("acme-api-key:\n  - api-key: k\n    base-url: ftp://x\n    weight: 2000000\n")
    assert caught.value.errors == [
        "acme-api-key[0].base-url: not a URL: 'ftp://x' (expected http:// or https://)",
        "acme-api-key[0].weight: must be at most 1,000,000",
    ]
    config, warnings, _ = parse_config_text("acme-api-key:\n  - api-key: k\n    websockets: true\n")
    assert warnings == []
    (entry,) = config.api_key_section("acme-api-key")
    assert entry.api_key == "k" and (entry.model_extra or {}).get("websockets") is True
    assert config.api_key_section("claude-api-key") == config.claude_api_key == ()


# --------------------------------------------------------------------------- a test-only auth-file kind


@dataclasses.dataclass(frozen=True)
class AcmeSettings:
    api_url: str = "https://api.acme.example/v1"


class AcmeOAuthExecutor(AuthFileExecutor[AcmeSettings]):
    kind: ClassVar[str] = "acme"
    dialect: ClassVar[Dialect] = Dialect.CHAT

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(self.settings.api_url, "/chat/completions")


ACME_OAUTH: AuthFileKind[AcmeSettings] = AuthFileKind(
    type="acme",
    owner="acme",
    settings=lambda env: AcmeSettings(env.get("CLIPROXY_ACME_API_URL", AcmeSettings.api_url)),
    executor=AcmeOAuthExecutor,
    base_url=lambda _cred, settings: settings.api_url,
    credential_filename=lambda data: f"acme-{data.get('email')}.json",
    check=require_tokens,
)


async def test_one_registry_line_makes_a_new_credential_file_type_load_route_and_write(tmp_path: Path) -> None:
    registry: ProviderRegistry = BUILTIN.with_providers(ACME_OAUTH)
    path = tmp_path / "acme-a.json"
    path.write_text(json.dumps({"type": "acme", "email": "a@x.com", "access_token": "at", "prefix": "team"}))
    os.chmod(path, 0o600)
    assert load_auth_dir(tmp_path).skipped == (("acme-a.json", "unsupported credential type 'acme'"),)
    (cred,) = load_auth_dir(tmp_path, registry).credentials
    assert cred.type == "acme" and cred.prefix == "team" and cred.label == "a@x.com"
    config, _, _ = parse_config_text("oauth-model-alias:\n  acme:\n    - {name: acme-large-2, alias: big}\n")
    routed = build_credential(cred, config, registry, ProviderSettings.from_env({}, registry))
    assert routed is not None and isinstance(routed.executor, AcmeOAuthExecutor)
    assert routed.owned_by == "acme" and [m.id for m in routed.models] == ["big"]
    store = CredentialStore(registry)
    updated = await store.update(path, lambda data: {**data, "disabled": True})
    assert updated.disabled and json.loads(path.read_text())["disabled"] is True
    with pytest.raises(ValueError, match="access_token or refresh_token is required"):
        await store.put(path, lambda current: {"type": "acme"})
