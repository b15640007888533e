"""Token helpers agree with the store's own hashing (api_authenticate)."""
from __future__ import annotations

import hashlib

from pganalytics.gateway.tokens import new_token, token_digest


def test_new_token_is_random_and_urlsafe():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for t in tokens:
        assert len(t) >= 43 and t.replace("-", "").replace("_", "").isalnum()


def test_digest_matches_store(store_conn):
    token = new_token()
    assert token_digest(token) == hashlib.sha256(token.encode()).digest()
    assert store_conn.execute("SELECT sha256(convert_to(%s, 'UTF8'))", (token,)).fetchone()[0] \
        == token_digest(token)
    store_conn.execute("SELECT pganalytics.api_add_token('cli', %s)", (token_digest(token),))
    assert store_conn.execute("SELECT pganalytics.api_authenticate(%s)", (token_digest(token),)).fetchone()[0] \
        == "cli"
