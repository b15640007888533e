"""REST v2 over seeded data: shapes, ordering, parameter validation, SQLSTATE mapping."""
from __future__ import annotations

from datetime import datetime

import pytest

from .conftest import SNAPSHOTS


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
    latest = {qid: (query, calls, total) for qid, query, calls, total in SNAPSHOTS[-1]}
    assert [r["queryid"] for r in rows] == [102, 101, 103]
    for r in rows:
        query, calls, total = latest[r["queryid"]]
        assert (r["query"], r["calls"]) == (query, calls)
        assert isinstance(r["total_exec_ms"], float) and r["total_exec_ms"] == pytest.approx(total)
        datetime.fromisoformat(r["last_collected_at"])


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
