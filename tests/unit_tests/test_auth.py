"""The server's token auth, without a server."""

import asyncio

import pytest
from langgraph_sdk import Auth

from spiral.shell.auth import authenticate, tokens_from_env


def _auth(header, monkeypatch, tokens="alice:token-aaaa-1111,bob:token-bbbb-2222"):
    monkeypatch.setenv("SPIRAL_API_TOKENS", tokens)
    return asyncio.run(authenticate(header))


def test_a_known_token_is_its_user(monkeypatch):
    assert _auth("Bearer token-bbbb-2222", monkeypatch)["identity"] == "bob"
    assert _auth("bearer  token-aaaa-1111", monkeypatch)["identity"] == "alice"


@pytest.mark.parametrize("header,status,words", [
    (None, 401, "Bearer"), ("token-aaaa-1111", 401, "Bearer"), ("Bearer nope-nope-nope", 401, "unknown"),
    ("Basic token-aaaa-1111", 401, "Bearer")])
def test_anything_else_is_refused(monkeypatch, header, status, words):
    with pytest.raises(Auth.exceptions.HTTPException) as refused:
        _auth(header, monkeypatch)
    assert refused.value.status_code == status and words in refused.value.detail


def test_no_tokens_means_no_access_not_open_access(monkeypatch):
    with pytest.raises(Auth.exceptions.HTTPException) as refused:
        _auth("Bearer anything-at-all", monkeypatch, tokens="")
    assert refused.value.status_code == 401 and "SPIRAL_API_TOKENS" in refused.value.detail


@pytest.mark.parametrize("tokens", ["alice", "alice:short", ":token-without-user"])
def test_malformed_token_lists_are_named(monkeypatch, tokens):
    monkeypatch.setenv("SPIRAL_API_TOKENS", tokens)
    with pytest.raises(ValueError, match="user:token"):
        tokens_from_env()
    with pytest.raises(Auth.exceptions.HTTPException) as refused:
        _auth("Bearer whatever-123", monkeypatch, tokens=tokens)
    assert refused.value.status_code == 500 and "misconfigured" in refused.value.detail
    assert "short" not in refused.value.detail  # the token itself is never echoed
