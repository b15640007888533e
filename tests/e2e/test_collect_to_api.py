"""The whole slice on the harness server: a workload runs on a target, `pganalytics collect
--once` snapshots it into the store twice (the API ranks what ran between snapshots), and the gateway serves it over /health and
/api/v2/queries to a token made by `pganalytics token create` — all as least-privilege roles
would see it (the gateway connects as a member of pganalytics_gateway only)."""
from __future__ import annotations

import psycopg
import pytest
from starlette.testclient import TestClient

from pganalytics import cli, store
from pganalytics.gateway.app import create_app


@pytest.fixture
def target_dsn(databases):
    dsn = databases.create(prefix="e2e_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, price numeric)")
        conn.execute("INSERT INTO items SELECT g, g * 1.5 FROM generate_series(1, 1000) g")
    return dsn


def run_workload(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(1, n + 1):
            conn.execute("SELECT price FROM items WHERE id = %s", (i,))


@pytest.fixture
def gateway_dsn(store_dsn):
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS pga_e2e_gw")
        conn.execute("CREATE ROLE pga_e2e_gw LOGIN IN ROLE pganalytics_gateway")
    yield psycopg.conninfo.make_conninfo(store_dsn, user="pga_e2e_gw")
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("DROP OWNED BY pga_e2e_gw")
        conn.execute("DROP ROLE pga_e2e_gw")


def test_collect_then_read_through_the_api(store_dsn, target_dsn, gateway_dsn, capsys):
    cli.main(["targets", "add", "shop", "--conn", target_dsn, "--dsn", store_dsn])
    run_workload(target_dsn, 5)
    cli.main(["collect", "--once", "--dsn", store_dsn])  # counters: the window starts here
    run_workload(target_dsn, 30)
    cli.main(["collect", "--once", "--dsn", store_dsn])  # what ran between the two snapshots
    cli.main(["token", "create", "e2e", "--dsn", store_dsn])
    token = capsys.readouterr().out.strip().splitlines()[-1]

    with TestClient(create_app(gateway_dsn)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["store"]["schema_revision"] == store.head_revision()
        assert client.get("/api/v2/queries", params={"instance": "shop"}).status_code == 401
        resp = client.get("/api/v2/queries", params={"instance": "shop", "limit": 1000},
                          headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200
        rows = {r["query"]: r for r in resp.json()}
        select = rows["SELECT price FROM items WHERE id = $1"]
        assert select["calls"] == 30 and select["mean_exec_ms"] > 0
        instances = client.get("/api/v2/instances", headers={"Authorization": f"Bearer {token}"}).json()
        assert [i["name"] for i in instances] == ["shop"]
        assert instances[0]["server_version_num"] >= 150000
