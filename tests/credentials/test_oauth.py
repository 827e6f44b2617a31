"""PKCE, state rules and redirect-URL parsing (the pieces both the CLI and the management API use)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.credentials.oauth import (
    OAuthError,
    generate_pkce,
    generate_state,
    parse_redirect_url,
    pkce_challenge,
    validate_state,
)
from cliproxy.credentials.registry import ProviderSettings


def test_pkce_matches_rfc7636_appendix_b() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_generated_pkce_and_state_are_valid_and_fresh() -> None:
    a, b = generate_pkce(), generate_pkce()
    assert a.verifier != b.verifier and 43 <= len(a.verifier) <= 128
    assert a.challenge == pkce_challenge(a.verifier) and a.method == "S256"
    state = generate_state()
    assert validate_state(state) == state and state != generate_state()


@pytest.mark.parametrize("bad", ["", "a" * 129, "a/b", "a..b", "x y", "é"])
def test_bad_states_are_refused(bad: str) -> None:
    with pytest.raises(OAuthError):
        validate_state(bad)


@given(st.text(alphabet="abcXYZ019._-", min_size=1, max_size=128).filter(lambda s: ".." not in s))
def test_any_tame_state_is_accepted(state: str) -> None:
    assert validate_state(state) == state


def test_claude_code_with_state_fragment_is_split() -> None:
    r = parse_redirect_url("http://localhost:54545/callback?code=abc#st-1")
    assert (r.code, r.state) == ("abc", "st-1")
    r = parse_redirect_url("http://localhost:54545/callback?code=abc%23st-1&state=st-1")
    assert (r.code, r.state) == ("abc", "st-1")
    r = parse_redirect_url("abc#st-1")  # what Claude's manual page shows
    assert (r.code, r.state) == ("abc", "st-1")


def test_codex_redirect_and_errors() -> None:
    r = parse_redirect_url("http://localhost:1455/auth/callback?code=c1&state=s1&scope=x")
    assert (r.code, r.state, r.error) == ("c1", "s1", "")
    r = parse_redirect_url("http://localhost:1455/auth/callback?error=access_denied&error_description=no&state=s")
    assert r.error == "access_denied: no" and r.code == ""
    with pytest.raises(OAuthError):
        parse_redirect_url("http://localhost:1455/auth/callback?state=s")


def test_every_url_is_overridable_from_the_environment() -> None:
    env = {
        "CLIPROXY_CLAUDE_TOKEN_URL": "http://t/claude",
        "CLIPROXY_CODEX_API_URL": "http://t/codex",
        "CLIPROXY_VERTEX_TOKEN_URL": "http://t/google",
        "CLIPROXY_CODEX_DEVICE_TOKEN_URL": "http://t/dev",
    }
    s = ProviderSettings.from_env(env)
    assert s.claude.token_url == "http://t/claude" and s.codex.api_url == "http://t/codex"
    assert s.vertex.token_url == "http://t/google" and s.codex.device_token_url == "http://t/dev"
    d = ProviderSettings.from_env({})
    assert d.claude.token_url == "https://platform.claude.com/v1/oauth/token"
    assert d.codex.api_url == "https://chatgpt.com/backend-api/codex/responses"
