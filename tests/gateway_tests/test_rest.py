"""REST v2 over seeded data: shapes, ordering, parameter validation, SQLSTATE mapping."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from .conftest import SNAPSHOTS, ingest


def test_instances(client, auth, seeded):
    rows = client.get("/api/v2/instances", headers=auth).json()
    assert [r["name"] for r in rows] == ["demo"]
    assert rows[0]["query_entries"] == 3
    datetime.fromisoformat(rows[0]["created_at"])
    assert "conn_ref" not in rows[0]


def test_queries_ordered_by_total_time(client, auth, seeded):
    resp = client.get("/api/v2/queries", params={"instance": seeded}, headers=auth)
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    rows = resp.json()
    # what each query did between the two snapshots (the last hour holds that one interval)
    first = {qid: (calls, total) for qid, _, calls, total in SNAPSHOTS[0]}
    latest = {qid: (query, calls, total) for qid, query, calls, total in SNAPSHOTS[-1]}
    assert [r["queryid"] for r in rows] == [102, 101, 103]
    for r in rows:
        query, calls, total = latest[r["queryid"]]
        calls, total = calls - first[r["queryid"]][0], total - first[r["queryid"]][1]
        assert (r["query"], r["calls"], r["intervals"]) == (query, calls, 1)
        assert isinstance(r["total_exec_ms"], float) and r["total_exec_ms"] == pytest.approx(total)
        assert r["mean_exec_ms"] == pytest.approx(total / calls)
        datetime.fromisoformat(r["last_collected_at"])
    assert sum(r["time_share_pct"] for r in rows) == pytest.approx(100)
    window = datetime.fromisoformat(rows[0]["window_to"]) - datetime.fromisoformat(rows[0]["window_from"])
    assert window == timedelta(hours=1)


@pytest.fixture
def bootstrapped(store_conn) -> str:
    """Like the demo: a `CREATE DATABASE` and a bulk `COPY` 3 hours ago (the largest all-time
    totals), then a light workload in the last hour."""
    iid = store_conn.execute(
        "SELECT pganalytics.register_instance('boot', 'service=boot')").fetchone()[0]
    now = datetime.now(timezone.utc)
    create = (201, "CREATE DATABASE bench", 1, 900.0)
    copy = (202, "COPY pgbench_accounts FROM stdin", 1, 60_000.0)
    ingest(store_conn, iid, now - timedelta(hours=3, minutes=1), [(209, "SELECT $1", 1, 0.1)])
    ingest(store_conn, iid, now - timedelta(hours=3), [create, copy])
    ingest(store_conn, iid, now - timedelta(minutes=30), [create, copy, (203, "UPDATE pgbench_accounts", 500, 750.0)])
    ingest(store_conn, iid, now - timedelta(minutes=1), [create, copy, (203, "UPDATE pgbench_accounts", 900, 1350.0),
                                                          (204, "SELECT abalance", 900, 90.0)])
    return "boot"


def top(client, auth, **params):
    resp = client.get("/api/v2/queries", params={"instance": "boot", **params}, headers=auth)
    assert resp.status_code == 200, resp.json()
    return [r["queryid"] for r in resp.json()]


def test_queries_rank_by_the_window_not_all_time(client, auth, bootstrapped):
    assert top(client, auth) == [203, 204]  # all-time totals put the COPY and CREATE DATABASE first
    assert top(client, auth, window="15m") == [203, 204]
    assert top(client, auth, window="6h") == [202, 203, 201, 204]
    now = datetime.now(timezone.utc)
    assert top(client, auth, **{"from": (now - timedelta(hours=4)).isoformat(),
                                "to": (now - timedelta(hours=2)).isoformat()}) == [202, 201]
    # one bound and a window, or one bound alone (the other is now)
    assert top(client, auth, **{"to": (now - timedelta(hours=2)).isoformat(), "window": "2h"}) == [202, 201]
    assert top(client, auth, **{"from": (now - timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")}) == [203, 204]
    # '+00:00' sent unencoded arrives as ' 00:00' and is still read
    resp = client.get(f"/api/v2/queries?instance=boot&from={(now - timedelta(hours=4)).isoformat()}"
                      f"&to={(now - timedelta(hours=2)).isoformat()}", headers=auth)
    assert [r["queryid"] for r in resp.json()] == [202, 201]


def test_queries_window_stats(client, auth, bootstrapped):
    rows = {r["queryid"]: r for r in client.get(
        "/api/v2/queries", params={"instance": "boot", "window": "1h"}, headers=auth).json()}
    update = rows[203]
    assert (update["calls"], update["intervals"]) == (900, 2)
    assert update["total_exec_ms"] == pytest.approx(1350.0)
    assert update["time_share_pct"] == pytest.approx(100 * 1350 / 1440)
    # the fixture's stddev is a quarter of the cumulative mean: 0.375 ms in both intervals
    assert update["stddev_exec_ms"] == pytest.approx(0.375, rel=1e-6)


@pytest.mark.parametrize("params, message", [
    ({"from": "yesterday"}, "'from' must be an ISO 8601 timestamp"),
    ({"to": "2026-13-01T00:00:00Z"}, "'to' must be an ISO 8601 timestamp"),
    ({"from": "2026-05-01T12:00:00"}, "'from' needs a time zone"),
    ({"from": "2026-05-01T12:00:00Z", "to": "2026-05-01T11:00:00Z"}, "'from' must be earlier than 'to'"),
    ({"from": "2026-05-01T12:00:00Z", "to": "2026-05-01T12:00:00+00:00"}, "'from' must be earlier than 'to'"),
    ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "at most 31 days"),
    ({"window": "32d"}, "at most 31 days"),
    ({"window": "1w"}, "'window' must be a number and a unit"),
    ({"window": "0h"}, "'window' must be a number and a unit"),
    ({"window": "-1h"}, "'window' must be a number and a unit"),
    ({"window": "1h", "from": "2026-05-01T12:00:00Z", "to": "2026-05-01T13:00:00Z"}, "at most two of"),
    ({"to": "0001-01-01T00:00:00Z"}, "outside the years"),
])
def test_queries_bad_window(client, auth, seeded, params, message):
    resp = client.get("/api/v2/queries", params={"instance": seeded, **params}, headers=auth)
    assert resp.status_code == 400
    assert message in resp.json()["error"]


def test_queries_limit(client, auth, seeded):
    rows = client.get("/api/v2/queries", params={"instance": seeded, "limit": 1}, headers=auth)
    assert [r["queryid"] for r in rows.json()] == [102]


@pytest.mark.parametrize("params", [{}, {"instance": ""}, {"instance": "  "}])
def test_queries_needs_instance(client, auth, params):
    resp = client.get("/api/v2/queries", params=params, headers=auth)
    assert resp.status_code == 400
    assert "instance" in resp.json()["error"]


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1.5", "", "99999999999"])
def test_queries_bad_limit(client, auth, seeded, limit):
    resp = client.get("/api/v2/queries", params={"instance": seeded, "limit": limit}, headers=auth)
    assert resp.status_code == 400
    assert "limit" in resp.json()["error"]


def test_queries_unknown_instance(client, auth):
    resp = client.get("/api/v2/queries", params={"instance": "nope"}, headers=auth)
    assert resp.status_code == 404
    assert resp.json() == {"error": "api_queries: unknown instance 'nope'"}


def test_analysis(client, auth, seeded):
    resp = client.get("/api/v2/queries/analysis", params={"instance": seeded}, headers=auth)
    assert resp.status_code == 200
    rows = resp.json()
    # analyze_query_performance's default min_calls (10) leaves out query 103 (6 calls)
    assert sorted(r["queryid"] for r in rows) == [101, 102]
    for r in rows:
        assert r["instance"] == "demo"
        assert isinstance(r["is_anomalous"], bool) and isinstance(r["reasons"], list)
        assert isinstance(r["mean_ms"], float) and r["recommendation"]


def test_analysis_needs_instance(client, auth):
    resp = client.get("/api/v2/queries/analysis", headers=auth)
    assert resp.status_code == 400


def test_analysis_unknown_instance(client, auth):
    resp = client.get("/api/v2/queries/analysis", params={"instance": "nope"}, headers=auth)
    assert resp.status_code == 404
    assert "unknown instance 'nope'" in resp.json()["error"]
