"""analyze_query_performance(): flags regressions against a robust baseline, not noise."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from .stage import entry, ingest, register


def feed(conn, iid, per_interval_ms: dict[int, list[float]], calls_per_interval=100, extra=None):
    """One snapshot per minute ending now; per_interval_ms[queryid][k] = mean ms in interval k.

    calls_per_interval: one number for every query, or {queryid: calls}."""
    extra = extra or {}
    if not isinstance(calls_per_interval, dict):
        calls_per_interval = dict.fromkeys(per_interval_ms, calls_per_interval)
    n = len(next(iter(per_interval_ms.values())))
    start = datetime.now(timezone.utc) - timedelta(minutes=n + 1)
    totals = {q: (0, 0.0) for q in per_interval_ms}
    ingest(conn, iid, start, [entry(q, 0 + 1, 0.001, **extra.get(q, {})) for q in per_interval_ms])
    for k in range(n):
        rows = []
        for q, means in per_interval_ms.items():
            calls, total = totals[q]
            calls, total = calls + calls_per_interval[q], total + calls_per_interval[q] * means[k]
            totals[q] = (calls, total)
            rows.append(entry(q, calls + 1, total + 0.001, **extra.get(q, {})))
        ingest(conn, iid, start + timedelta(minutes=k + 1), rows)


def analysis(conn, *args):
    sql = "SELECT * FROM pganalytics.analyze_query_performance(%s" + ", %s" * len(args) + ")"
    rows = conn.execute(sql, ("db1", *args))
    cols = [c.name for c in rows.description]
    return {r[cols.index("queryid")]: dict(zip(cols, r)) for r in rows.fetchall()}


def test_latency_regression_is_flagged_and_noise_is_not(store_conn):
    iid = register(store_conn)
    steady = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3]
    noisy = [5.0, 15.0, 8.0, 12.0, 6.0, 14.0, 9.0, 13.0]
    feed(store_conn, iid, {1: steady + [50.0], 2: noisy + [14.5], 3: steady + [10.4]})
    result = analysis(store_conn)
    assert result[1]["is_anomalous"] and "latency_regression" in result[1]["reasons"]
    assert result[1]["robust_z"] > 3.5
    assert result[1]["latest_mean_ms"] == pytest.approx(50.0, rel=1e-6)
    assert "plan" in result[1]["recommendation"]
    assert not result[2]["is_anomalous"]  # wide but stable spread: not a regression
    assert not result[3]["is_anomalous"]
    assert result[3]["recommendation"] == "No problem found."


def test_recommendations_follow_the_evidence(store_conn):
    iid = register(store_conn)
    feed(store_conn, iid, {7: [10.0] * 6},
         extra={7: {"temp_blks_written": 5000, "shared_blks_read": 90000, "shared_blks_hit": 10000}})
    row = analysis(store_conn)[7]
    assert {"temp_spill", "cache_misses"} <= set(row["reasons"])
    assert "work_mem" in row["recommendation"] and "shared_buffers" in row["recommendation"]
    assert not row["is_anomalous"]


STEADY = [1.0, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, 1.03]


def test_a_statistically_sure_but_tiny_change_is_not_a_regression(store_conn):
    """The demo's `SET pg_stat_statements.track = none`: 0.009 -> 0.014 ms is 30+ robust z
    and 1.5x, and 5 microseconds. Alone on the instance (100 % of its time) it still is not
    worth a page; with the floors at 0 the statistical finding is there."""
    iid = register(store_conn)
    feed(store_conn, iid, {11: [0.009 * m for m in STEADY] + [0.014]})
    row = analysis(store_conn)[11]
    assert row["robust_z"] > 3.5 and row["latest_time_share_pct"] == pytest.approx(100)
    assert not row["is_anomalous"] and "latency_regression" not in row["reasons"]
    assert analysis(store_conn, "24 hours", 10, 3.5, 0.0, 0.0)[11]["is_anomalous"]


def test_a_fast_insert_is_not_unstable(store_conn):
    """A 0.4 ms INSERT whose stddev (0.5 ms) exceeds half its mean: not worth attention;
    a 10 ms query taking most of the time with a 20 ms stddev is."""
    iid = register(store_conn)
    feed(store_conn, iid, {21: [0.4 * m for m in STEADY], 22: [10.0 * m for m in STEADY]},
         extra={21: {"stddev": 0.5}, 22: {"stddev": 20.0}})
    result = analysis(store_conn)
    assert "unstable_latency" not in result[21]["reasons"] and not result[21]["is_anomalous"]
    assert result[21]["recommendation"] == "No problem found."
    assert "unstable_latency" in result[22]["reasons"]
    assert result[22]["time_share_pct"] > 90


def test_a_real_regression_on_a_large_share_is_flagged(store_conn):
    """5 ms -> 40 ms on the query that takes most of the instance's time."""
    iid = register(store_conn)
    feed(store_conn, iid, {31: [5.0 * m for m in STEADY] + [40.0], 32: [0.2 * m for m in STEADY] + [0.2]},
         calls_per_interval={31: 100, 32: 100})
    row = analysis(store_conn)[31]
    assert row["is_anomalous"] and "latency_regression" in row["reasons"]
    assert row["latest_mean_ms"] == pytest.approx(40.0, rel=1e-6)
    assert row["latest_time_share_pct"] > 90
    assert "40.000 ms" in row["recommendation"]


def test_a_regression_on_a_negligible_share_is_not_flagged(store_conn):
    """The same 5 -> 40 ms jump on a query run once a minute, next to one that takes 2,000
    calls x 50 ms a minute: 0.4 % of the time in that interval, below the 1 % default."""
    iid = register(store_conn)
    feed(store_conn, iid, {41: [5.0 * m for m in STEADY] + [40.0], 42: [50.0] * 9},
         calls_per_interval={41: 10, 42: 2000})
    row = analysis(store_conn)[41]
    assert row["robust_z"] > 3.5 and row["latest_time_share_pct"] < 1
    assert not row["is_anomalous"] and "latency_regression" not in row["reasons"]
    assert analysis(store_conn, "24 hours", 10, 3.5, 1.0, 0.0)[41]["is_anomalous"]


def test_bad_arguments_are_clear_errors(store_conn):
    register(store_conn)
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown instance 'nope'"):
        store_conn.execute("SELECT * FROM pganalytics.analyze_query_performance('nope')")
    with pytest.raises(psycopg.errors.RaiseException, match="window must be a positive interval"):
        store_conn.execute("SELECT * FROM pganalytics.analyze_query_performance(NULL, '-1 hour')")
    with pytest.raises(psycopg.errors.RaiseException, match="min_change_ms must be >= 0"):
        store_conn.execute("SELECT * FROM pganalytics.analyze_query_performance(NULL, '1 hour', 10, 3.5, -1)")
    with pytest.raises(psycopg.errors.RaiseException, match="min_time_share_pct must be from 0 to 100"):
        store_conn.execute(
            "SELECT * FROM pganalytics.analyze_query_performance(NULL, '1 hour', 10, 3.5, 1, 101)")
