"""api_queries(): top queries by what they did in a window, from the per-interval deltas."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from .stage import entry, ingest, register

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.fixture
def history(store_conn) -> int:
    """Query 4 is a bootstrap 'CREATE DATABASE' (huge all-time total, ran 3 h ago only);
    query 1 ran 1 and 3 ms in the interval ending 40 min ago, then 10 and 10 ms in the one
    ending 10 min ago (so stddev over both is exact only from sums of squares); query 2 ran
    once, 30 ms, in the last interval; query 3 is a nested statement."""
    iid = register(store_conn)
    ingest(store_conn, iid, ago(200), [entry(9, 1, 1.0)])
    ingest(store_conn, iid, ago(180), [entry(9, 1, 1.0), entry(4, 1, 90_000.0, query="CREATE DATABASE bench")])
    ingest(store_conn, iid, ago(40), [entry(1, 2, 4.0, stddev=1.0, query="SELECT 1")])
    ingest(store_conn, iid, ago(10), [
        entry(1, 4, 24.0, stddev=math.sqrt(16.5), query="SELECT 1"),
        entry(2, 1, 30.0, query="UPDATE t SET v = 1"),
        entry(3, 5, 10.0, toplevel=False, query="SELECT nested")])
    return iid


def top(conn, *args):
    cur = conn.execute(f"SELECT * FROM pganalytics.api_queries({', '.join(['%s'] * len(args))})", args)
    cols = [c.name for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_default_window_is_the_last_hour_not_all_time(store_conn, history):
    rows = top(store_conn, "db1")
    # query 4 (90 s all-time, 3 h ago) outranked everything by the old all-time totals
    assert [r["queryid"] for r in rows] == [2, 1, 3]
    window = rows[0]["window_to"] - rows[0]["window_from"]
    assert window == timedelta(hours=1)
    assert abs((rows[0]["window_to"] - datetime.now(timezone.utc)).total_seconds()) < 60


def test_stddev_over_the_window_is_exact(store_conn, history):
    both = {r["queryid"]: r for r in top(store_conn, "db1", 50, ago(60), NOW)}[1]
    assert (both["calls"], both["intervals"]) == (4, 2)
    assert both["total_exec_ms"] == pytest.approx(24.0)
    assert both["mean_exec_ms"] == pytest.approx(6.0)
    assert both["stddev_exec_ms"] == pytest.approx(math.sqrt(16.5))  # of 1, 3, 10, 10 ms
    last = {r["queryid"]: r for r in top(store_conn, "db1", 50, ago(20), NOW)}[1]
    assert (last["calls"], last["mean_exec_ms"]) == (2, pytest.approx(10.0))
    assert last["stddev_exec_ms"] == pytest.approx(0.0, abs=1e-6)
    assert last["last_collected_at"] == ago(10)


def test_share_of_time_counts_top_level_statements_once(store_conn, history):
    rows = {r["queryid"]: r for r in top(store_conn, "db1", 50, ago(60), NOW)}
    # top-level time in the window: 24 (query 1) + 30 (query 2); query 3 is nested
    assert rows[2]["time_share_pct"] == pytest.approx(100 * 30 / 54)
    assert rows[1]["time_share_pct"] == pytest.approx(100 * 24 / 54)
    assert rows[3]["time_share_pct"] == pytest.approx(100 * 10 / 54)


def test_a_window_ends_where_intervals_end(store_conn, history):
    # intervals count when they END inside (from, to]
    assert [r["queryid"] for r in top(store_conn, "db1", 50, ago(190), ago(170))] == [4]
    assert top(store_conn, "db1", 50, ago(180), ago(170)) == []
    assert [r["queryid"] for r in top(store_conn, "db1", 50, ago(190), ago(180))] == [4]
    assert [r["queryid"] for r in top(store_conn, "db1", 50, ago(24 * 60), NOW)][:1] == [4]


def test_one_bound_only(store_conn, history):
    rows = top(store_conn, "db1", 50, None, ago(30))  # the hour before 30 min ago
    assert [r["queryid"] for r in rows] == [1]
    assert rows[0]["window_from"] == ago(90)


@pytest.mark.parametrize("start, end, message", [
    (ago(10), ago(20), "must start before it ends"),
    (ago(10), ago(10), "must start before it ends"),
    (ago(32 * 24 * 60), NOW, "at most 31 days"),
])
def test_bad_windows_are_clear_errors(store_conn, history, start, end, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        top(store_conn, "db1", 50, start, end)


def test_unknown_instance(store_conn):
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown instance 'nope'"):
        top(store_conn, "nope")
