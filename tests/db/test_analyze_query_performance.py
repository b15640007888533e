"""analyze_query_performance(): flags regressions against a robust baseline, not noise."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from .stage import entry, ingest, register


def feed(conn, iid, per_interval_ms: dict[int, list[float]], calls_per_interval=100, extra=None):
    """One snapshot per minute ending now; per_interval_ms[queryid][k] = mean ms in interval k."""
    extra = extra or {}
    n = len(next(iter(per_interval_ms.values())))
    start = datetime.now(timezone.utc) - timedelta(minutes=n + 1)
    totals = {q: (0, 0.0) for q in per_interval_ms}
    ingest(conn, iid, start, [entry(q, 0 + 1, 0.001, **extra.get(q, {})) for q in per_interval_ms])
    for k in range(n):
        rows = []
        for q, means in per_interval_ms.items():
            calls, total = totals[q]
            calls, total = calls + calls_per_interval, total + calls_per_interval * means[k]
            totals[q] = (calls, total)
            rows.append(entry(q, calls + 1, total + 0.001, **extra.get(q, {})))
        ingest(conn, iid, start + timedelta(minutes=k + 1), rows)


def analysis(conn, **kw):
    rows = conn.execute("SELECT * FROM pganalytics.analyze_query_performance(%s)", ("db1",))
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


def test_bad_arguments_are_clear_errors(store_conn):
    register(store_conn)
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown instance 'nope'"):
        store_conn.execute("SELECT * FROM pganalytics.analyze_query_performance('nope')")
    with pytest.raises(psycopg.errors.RaiseException, match="window must be a positive interval"):
        store_conn.execute("SELECT * FROM pganalytics.analyze_query_performance(NULL, '-1 hour')")
