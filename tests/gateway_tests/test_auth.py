"""Bearer tokens checked by pganalytics.api_authenticate, with a short positive cache."""
from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from pganalytics.gateway.app import create_app
from pganalytics.gateway.tokens import token_digest

URL = "/api/v2/instances"


def assert_401(resp):
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert set(resp.json()) == {"error"}


def test_missing_token(client):
    assert_401(client.get(URL))


@pytest.mark.parametrize("header", ["Bearer", "Bearer   ", "Basic dXNlcjpwdw==", "token abc"])
def test_malformed_header(client, header):
    assert_401(client.get(URL, headers={"Authorization": header}))


def test_bad_token(client, token, caplog):
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with caplog.at_level(logging.DEBUG):
        resp = client.get(URL, headers={"Authorization": f"Bearer {bad}"})
    assert_401(resp)
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    assert bad not in caplog.text and bad not in resp.text


def test_valid_token(client, auth):
    assert client.get(URL, headers=auth).status_code == 200


def test_revoked_token(client, store_conn, auth):
    store_conn.execute("UPDATE pganalytics.api_tokens SET revoked_at = now()")
    assert_401(client.get(URL, headers=auth))


def test_revocation_after_use_with_cache_disabled(store_dsn, store_conn, auth):
    with TestClient(create_app(store_dsn, auth_ttl=0)) as client:
        assert client.get(URL, headers=auth).status_code == 200
        store_conn.execute("UPDATE pganalytics.api_tokens SET revoked_at = now()")
        assert_401(client.get(URL, headers=auth))


def test_cache_keeps_digests_not_tokens(store_dsn, store_conn, auth, token):
    app = create_app(store_dsn, auth_ttl=30)
    with TestClient(app) as client:
        assert client.get(URL, headers=auth).status_code == 200
        # cached: a revocation is seen only after the ttl, without a store round trip
        store_conn.execute("UPDATE pganalytics.api_tokens SET revoked_at = now()")
        assert client.get(URL, headers=auth).status_code == 200
    assert list(app.state.auth._cache) == [token_digest(token)]

