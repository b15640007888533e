"""The gateway runs as a login role that is only a member of pganalytics_gateway:
it needs no table privileges (the api surface is SECURITY DEFINER functions and views)."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from starlette.testclient import TestClient

from pganalytics.gateway.app import create_app


@pytest.fixture
def gateway_dsn(store_dsn, store_conn):
    role = f"gw_{uuid.uuid4().hex[:8]}"
    store_conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pganalytics_gateway")
    params = psycopg.conninfo.conninfo_to_dict(store_dsn)
    params.update(user=role)
    params.pop("password", None)
    yield psycopg.conninfo.make_conninfo(**params)
    store_conn.execute(f"DROP ROLE {role}")


def test_gateway_role_serves_api(gateway_dsn, auth, seeded):
    with TestClient(create_app(gateway_dsn)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok"
        assert client.get("/api/v2/instances", headers=auth).json()[0]["name"] == "demo"
        rows = client.get("/api/v2/queries", params={"instance": seeded}, headers=auth).json()
        assert len(rows) == 3
        analysis = client.get("/api/v2/queries/analysis", params={"instance": seeded},
                              headers=auth)
        assert analysis.status_code == 200 and analysis.json()


def test_gateway_role_cannot_read_tokens(gateway_dsn):
    with psycopg.connect(gateway_dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM pganalytics.api_tokens")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM pganalytics.query_stats")
