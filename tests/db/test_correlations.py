"""pganalytics.correlations(): an instance's metrics over a window, on one grid, through the
store's own tables. 20 minutes at a 1-second collection: lock episodes (sessions waiting, the
daemon's lock sampling), statements whose latency follows them 20 s later (pg_stat_statements
snapshots through the real ingest), and a gauge through the collector's Sink that has nothing
to do with either."""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import psycopg
import pytest

from pganalytics.collector.batch import SamplesBatch

from .stage import deliver_samples, entry, ingest, register

SECONDS = 20 * 60
LEAD_S = 20


@pytest.fixture
def loaded(store_conn, store_dsn):
    conn = store_conn
    iid = register(conn, "c1")
    start = conn.execute("SELECT date_trunc('minute', now()) - interval '25 minutes'").fetchone()[0]
    for parent in ("wait_samples", "query_stat_deltas", "sample_frames", "snapshots"):
        conn.execute("SELECT pganalytics.ensure_partitions(%s::regclass, %s, %s)",
                     (f"pganalytics.{parent}", start - timedelta(days=1), start + timedelta(days=1)))
    rng = np.random.default_rng(3)
    waiting = np.zeros(SECONDS)
    t = 30
    while t < SECONDS - 60:
        length = int(rng.integers(10, 40))
        waiting[t:t + length] = rng.integers(2, 6)
        t += length + int(rng.integers(40, 90))
    ts = [start + timedelta(seconds=s) for s in range(SECONDS)]
    lock_rows = [(iid, ts[s], "lock_wait", 1000 + k) for s in range(SECONDS) for k in range(int(waiting[s]))]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO pganalytics.lock_waits (instance_id, collected_at, kind, pid) VALUES (%s, %s, %s, %s)",
                        lock_rows)
        cur.executemany("INSERT INTO pganalytics.wait_samples (instance_id, collected_at, interval_s, ticks, samples) "
                        "VALUES (%s, %s, 1, 1, 1)", [(iid, t) for t in ts])
    # latency per call: 2 ms, plus 40 ms for each session that was waiting LEAD_S seconds before
    calls, total = 0, 0.0
    for s in range(SECONDS):
        calls += 100
        total += 100 * (2.0 + 40.0 * (waiting[s - LEAD_S] if s >= LEAD_S else 0) + rng.normal(0, 0.5))
        ingest(conn, iid, ts[s], [entry(7, calls, total)])
    deliver_samples(store_dsn, [SamplesBatch("c1", "pg_stat_database", t + timedelta(milliseconds=5),
                                             [("pg_database_numbackends", {"datname": "app"}, "gauge",
                                               float(20 + rng.normal(0, 2)))]) for t in ts])
    return conn, start


def correlations(conn, metrics, window="20 minutes", options="{}", start=None):
    cur = conn.execute("SELECT * FROM pganalytics.correlations('c1', %s, %s::interval, %s::jsonb || %s::jsonb)",
                       (metrics, window, options, json.dumps({"to": (start + timedelta(seconds=SECONDS)).isoformat()})))
    return {(r[0], r[1]): dict(zip([d.name for d in cur.description], r)) for r in cur.fetchall()}


def test_lock_waits_lead_query_latency_by_the_lag_built_in(loaded):
    conn, start = loaded
    got = correlations(conn, ["lock_waits", "query_latency", "pg_database_numbackends"], start=start)
    assert set(got) == {("lock_waits", "query_latency"), ("lock_waits", "pg_database_numbackends"),
                        ("query_latency", "pg_database_numbackends")}
    pair = got[("lock_waits", "query_latency")]
    assert pair["leader"] == "lock_waits" and pair["significant"]
    assert abs(pair["lag"] - timedelta(seconds=LEAD_S)) <= timedelta(seconds=1)
    assert pair["r_at_lag"] > 0.9 and abs(pair["r"]) < pair["r_at_lag"]
    assert "lock_waits leads query_latency by 20 s" in pair["insight"]
    for other in (("lock_waits", "pg_database_numbackends"), ("query_latency", "pg_database_numbackends")):
        assert abs(got[other]["r_at_lag"]) < 0.3 and got[other]["insight"] is None
    # strongest first
    assert next(iter(got)) == ("lock_waits", "query_latency")


def test_a_coarser_grid_and_one_statement(loaded):
    conn, start = loaded
    got = correlations(conn, ["lock_waits", "query_latency{queryid=7}"], options='{"resolution": "raw", "step": "5 s"}',
                       start=start)
    pair = got[("lock_waits", "query_latency{queryid=7}")]
    assert pair["leader"] == "lock_waits" and abs(pair["lag"] - timedelta(seconds=LEAD_S)) <= timedelta(seconds=5)


@pytest.mark.parametrize("metrics, window, options, message", [
    (["lock_waits"], "20 minutes", "{}", "name 2 to 200 metrics"),
    (["lock_waits", "no_such_metric"], "20 minutes", "{}", "has no metric"),
    (["lock_waits", "Bad Name"], "20 minutes", "{}", "is not a metric name"),
    (["lock_waits", "query_latency{datname=x}"], "20 minutes", "{}", "takes only a queryid filter"),
    (["lock_waits", "pg_database_numbackends{datname=nope}"], "20 minutes", "{}", "has the labels"),
    (["lock_waits", "query_latency"], "10 seconds", "{}", "window must be"),
    (["lock_waits", "query_latency"], "20 minutes", '{"colour": 1}', "unknown option"),
    (["lock_waits", "query_latency"], "20 minutes", '{"step": "soon"}', "step and max_lag intervals"),
])
def test_bad_input_is_refused_saying_why(loaded, metrics, window, options, message):
    conn, start = loaded
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        correlations(conn, metrics, window, options, start=start)
