"""Payload rules run on the upstream body after translation, through the running proxy."""

from __future__ import annotations

import anthropic

from cliproxy.translate import Dialect
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.test_proxy_matrix import MODEL, upstream_config

RULES = """
payload:
  default:
    - models: [{name: "up-*", protocol: gemini}]
      params: {"generationConfig.topK": 40}
  override:
    - models: [{name: "*", protocol: gemini, from-protocol: claude}]
      params: {"generationConfig.maxOutputTokens": 128}
    - models: [{name: "*", protocol: openai}]
      params: {"temperature": 1.5}
  filter:
    - models: [{name: "*", from-protocol: claude}]
      params: ["generationConfig.temperature"]
"""


async def test_rules_edit_the_translated_gemini_body(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.GEMINI, base) + RULES)
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    message = await ac.messages.create(
        model=MODEL, max_tokens=64, extra_body={"temperature": 0.2}, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text" and message.content[0].text == "Hello from fake"
    (seen,) = fake.seen
    config = seen.json["generationConfig"]
    assert config["topK"] == 40  # default: absent in the client body
    assert config["maxOutputTokens"] == 128  # override wins over the translated max_tokens
    assert "temperature" not in config  # filter removed what translation produced
    assert "temperature" not in seen.json  # the openai-only rule did not apply to a gemini upstream
    assert seen.json["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


async def test_no_rule_matches_leaves_the_translation_alone(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(
        upstream_config(Dialect.CHAT, base) + RULES.replace("protocol: openai", "protocol: codex")
    )
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    await ac.messages.create(
        model=MODEL, max_tokens=64, extra_body={"temperature": 0.2}, messages=[{"role": "user", "content": "hi"}]
    )
    (seen,) = fake.seen
    assert seen.json["temperature"] == 0.2 and seen.json["max_tokens"] == 64
