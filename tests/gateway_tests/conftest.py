"""Fixtures for gateway tests: a real store (tests/conftest.py), seeded through the real
ingest path, a token made the way the CLI makes it, and a TestClient whose lifespan runs
(the pool opens and closes) because it is used in a `with` block."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from starlette.testclient import TestClient

from pganalytics import localpg
from pganalytics.gateway.app import create_app
from pganalytics.gateway.tokens import new_token, token_digest

# (queryid, query, calls, total_exec_time ms) per snapshot; cumulative like pg_stat_statements
SNAPSHOTS = [
    [(101, "SELECT * FROM orders WHERE id = $1", 100, 50.0),
     (102, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", 10, 400.0),
     (103, "SELECT $1", 5, 0.5)],
    [(101, "SELECT * FROM orders WHERE id = $1", 200, 100.0),
     (102, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", 20, 800.0),
     (103, "SELECT $1", 6, 0.6)],
]


def ingest(conn: psycopg.Connection, instance_id: int, collected_at: datetime, rows) -> None:
    """Stage one pg_stat_statements snapshot and ingest it, in one transaction."""
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO pganalytics.query_stats_stage (dbid, userid, queryid, toplevel, calls,"
                " total_exec_time, mean_exec_time, stddev_exec_time, rows)"
                " VALUES (5, 10, %s, true, %s, %s, %s, %s, %s)",
                [(qid, calls, total, total / calls, total / calls / 4, calls)
                 for qid, query, calls, total in rows])
        conn.execute("SELECT pganalytics.ingest_query_stats(0, %s, %s, NULL, NULL, %s, %s)",
                     (instance_id, collected_at, [r[0] for r in rows], [r[1] for r in rows]))


@pytest.fixture
def seeded(store_conn) -> str:
    """Instance 'demo' with two snapshots a minute apart; returns the instance name."""
    instance_id = store_conn.execute(
        "SELECT pganalytics.register_instance('demo', 'service=demo')").fetchone()[0]
    start = datetime.now(timezone.utc) - timedelta(minutes=2)
    for i, rows in enumerate(SNAPSHOTS):
        ingest(store_conn, instance_id, start + timedelta(minutes=i), rows)
    return "demo"


def add_token(conn: psycopg.Connection, name: str = "test") -> str:
    token = new_token()
    conn.execute("SELECT pganalytics.api_add_token(%s, %s)", (name, token_digest(token)))
    return token


@pytest.fixture
def token(store_conn) -> str:
    return add_token(store_conn)


@pytest.fixture
def auth(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(store_dsn):
    with TestClient(create_app(store_dsn, timeout=3)) as c:
        yield c


@pytest.fixture
def down_dsn() -> str:
    """A DSN whose port nothing listens on, with a password that must never be echoed."""
    return f"host=127.0.0.1 port={localpg.free_port()} user=nobody password=s3cret-pw dbname=x"


@pytest.fixture
def down_client(down_dsn):
    with TestClient(create_app(down_dsn, timeout=1)) as c:
        yield c
