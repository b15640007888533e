"""Token helpers agree with the store's own hashing (api_authenticate)."""
from __future__ import annotations

import hashlib

import psycopg
import pytest

from pganalytics import cli
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


def test_token_commands_create_list_revoke(store_dsn, capsys):
    """`pganalytics token create|list|revoke`: list shows names and states (never a token
    or digest), a revoked token is refused by the store's check, an unknown name is one
    sentence and exit code 2."""
    cli.main(["token", "create", "ops", "--dsn", store_dsn])
    token = capsys.readouterr().out.strip()
    cli.main(["token", "create", "ci", "--dsn", store_dsn])
    capsys.readouterr()
    cli.main(["token", "list", "--dsn", store_dsn])
    listed = capsys.readouterr().out
    assert [line.split("\t")[0] for line in listed.splitlines()] == ["ci", "ops"]
    assert "active" in listed and token not in listed and token_digest(token).hex() not in listed

    cli.main(["token", "revoke", "ops", "--dsn", store_dsn])
    assert "token ops revoked" in capsys.readouterr().out
    cli.main(["token", "list", "--dsn", store_dsn])
    states = dict(line.split("\t")[0::2] for line in capsys.readouterr().out.splitlines())
    assert states["ops"].startswith("revoked ") and states["ci"] == "active"
    with psycopg.connect(store_dsn) as conn:
        assert conn.execute("SELECT pganalytics.api_authenticate(%s)", (token_digest(token),)).fetchone()[0] is None

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["token", "revoke", "nobody", "--dsn", store_dsn])
    assert exit_info.value.code == 2
    assert "no token named 'nobody'" in capsys.readouterr().err
