"""pganalytics.forecast() over stored rollups and the days-to-threshold alerts (forecast_alerts()),
recorded with the anomaly events. The hourly history is written straight into rollups_1h (two
weeks of rollups through maintain() would be minutes of test for what read_series() reads
anyway); rollup_progress says it is all rolled up, so read_series() reads those rows alone."""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import psycopg
import pytest

from .stage import register

HOURS = 14 * 24
XID_STOP = 2 ** 31 - 3_000_000


@pytest.fixture
def store(store_conn):
    conn = store_conn
    iid = register(conn, "f1")
    now = conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]
    # the newest hour three hours back: the tests add later hours
    start = now - timedelta(hours=HOURS + 3)
    for parent in ("rollups_1h", "rollups_1m"):
        conn.execute("SELECT pganalytics.ensure_partitions(%s::regclass, %s, %s)",
                     (f"pganalytics.{parent}", start - timedelta(days=1), now + timedelta(days=1)))
    conn.execute("INSERT INTO pganalytics.rollup_progress (instance_id, rolled_until) VALUES (%s, %s)",
                 (iid, now + timedelta(hours=1)))
    rng = np.random.default_rng(5)
    hours = np.arange(HOURS)
    daily = np.sin(2 * np.pi * (hours % 24) / 24)
    # the data directory: 50 GB used of 100 GB, growing 1 GB a day (with a daily wiggle)
    used = 50e9 + 1e9 * hours / 24 + 5e7 * daily + rng.normal(0, 1e7, HOURS)
    # XID age 1.9 billion, 10 million more a day: the stop point in ~24 days
    xid = 1.9e9 + 1e7 * hours / 24 + rng.normal(0, 1e5, HOURS)
    backends = 20 + 5 * daily + rng.normal(0, 1, HOURS)  # far from 200
    series = {("host_disk_used_bytes", '{"path": "/data"}'): used,
              ("host_disk_total_bytes", '{"path": "/data"}'): np.full(HOURS, 100e9),
              ("pg_database_xid_age", '{"datname": "app"}'): xid,
              ("pg_database_numbackends", '{"datname": "app"}'): backends}
    for (metric, labels), values in series.items():
        sid = conn.execute("INSERT INTO pganalytics.series (instance_id, metric, labels, kind) "
                           "VALUES (%s, %s, %s, 'gauge') RETURNING series_id", (iid, metric, labels)).fetchone()[0]
        conn.execute("INSERT INTO pganalytics.rollups_1h (instance_id, series_id, bucket, n, sum, min, max, last) "
                     "SELECT %s, %s, %s + u.k * interval '1 hour', 60, 60 * u.v, u.v, u.v, u.v "
                     "FROM unnest(%s::float8[]) WITH ORDINALITY AS u (v, k)",
                     (iid, sid, start - timedelta(hours=1), list(map(float, values))))
    conn.execute("INSERT INTO pganalytics.settings_history (instance_id, name, setting, valid_from) "
                 "VALUES (%s, 'max_connections', '200', %s)", (iid, start))
    return conn, iid, now


def alerts(conn, days=60, options=None):
    cur = conn.execute("SELECT * FROM pganalytics.forecast_alerts('f1', %s, %s)", (days, json.dumps(options or {})))
    return [dict(zip([d.name for d in cur.description], r)) for r in cur.fetchall()]


def test_forecast_reads_the_stored_series_and_forecasts_each(store):
    conn, _, now = store
    rows = conn.execute("SELECT labels, ts, yhat, lo, hi FROM pganalytics.forecast('f1', 'pg_database_xid_age', 3)").fetchall()
    assert len(rows) == 72 and {r[0]["datname"] for r in rows} == {"app"}
    assert rows[0][1] == now - timedelta(hours=3) and all(b[1] - a[1] == timedelta(hours=1) for a, b in zip(rows, rows[1:]))
    # the trend goes on: about 10 million a day
    assert rows[-1][2] - rows[0][2] == pytest.approx(2.9e7, rel=0.3)
    assert all(r[3] <= r[2] <= r[4] for r in rows)


def test_forecast_refuses_what_it_cannot_do(store):
    conn, _, _ = store
    for args, message in ((("f1", "pg_database_xid_age", 0, "{}"), "days must be 1 to 90"),
                          (("f1", "pg_database_xid_age", 3, '{"horizon": 3}'), "unknown option"),
                          (("f1", "pg_database_xid_age", 3, '{"resolution": "1s"}'), "resolution must be"),
                          (("f1", "pg_database_xid_age", 3, '{"history": "2 hours"}'), "has the 10 points")):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
            conn.execute("SELECT * FROM pganalytics.forecast(%s, %s, %s, %s)", args)
    with pytest.raises(psycopg.Error, match="has no metric"):
        conn.execute("SELECT * FROM pganalytics.forecast('f1', 'no_such_metric', 3)")


def test_disk_and_xid_alerts_come_with_their_date_confidence_and_advice(store):
    conn, _, now = store
    got = {a["alert"]: a for a in alerts(conn, days=60)}
    assert set(got) == {"disk_full", "xid_wraparound"}  # 20 of 197 connections is nowhere near
    disk, xid = got["disk_full"], got["xid_wraparound"]
    assert disk["subject"] == "path:/data" and disk["limit_value"] == 100e9
    assert disk["days_left"] == pytest.approx(50 - 14, abs=3)  # 64 GB used now, 1 GB a day
    expect_xid = (XID_STOP - (1.9e9 + 1e7 * 14)) / 1e7
    assert xid["days_left"] == pytest.approx(expect_xid, abs=2)
    assert abs(xid["predicted_at"] - (now + timedelta(days=expect_xid))) < timedelta(days=2)
    for a in (disk, xid):
        assert a["confidence"] > 0.9 and a["earliest_at"] <= a["predicted_at"]
        assert a["recommendation"] and "confidence" in a["description"]
    # most urgent first
    assert [a["alert"] for a in alerts(conn, days=60, options={"record": False})] == ["xid_wraparound", "disk_full"]


def test_a_limit_beyond_the_horizon_is_no_alert(store):
    conn, _, _ = store
    assert [a["alert"] for a in alerts(conn, days=30)] == ["xid_wraparound"]


def test_alerts_are_events_once_per_episode_and_close_when_no_longer_predicted(store):
    conn, iid, _ = store
    alerts(conn, days=60)
    events = conn.execute("SELECT anomaly_type, subject, points, ended_at, peak_score, context "
                          "FROM pganalytics.anomalies WHERE instance_id = %s AND source = 'forecast' ORDER BY 1",
                          (iid,)).fetchall()
    assert [(e[0], e[1], e[2], e[3]) for e in events] == [("disk_full", "path:/data", 1, None),
                                                         ("xid_wraparound", "datname:app", 1, None)]
    assert events[0][5]["recommendation"] and events[0][5]["days_left"] > 30
    alerts(conn, days=60)  # the same data again: nothing changes
    assert conn.execute("SELECT sum(points) FROM pganalytics.anomalies WHERE source = 'forecast'").fetchone()[0] == 2
    # a later hour: the same alerts go on in the same events; then, an hour later still, a look
    # one day ahead predicts neither: both events end
    sid = conn.execute("SELECT series_id FROM pganalytics.series WHERE metric = 'host_disk_used_bytes'").fetchone()[0]
    conn.execute("INSERT INTO pganalytics.rollups_1h (instance_id, series_id, bucket, n, sum, min, max, last) "
                 "SELECT instance_id, series_id, bucket + interval '1 hour', n, sum, min, max, last "
                 "FROM pganalytics.rollups_1h WHERE series_id = %s ORDER BY bucket DESC LIMIT 1", (sid,))
    alerts(conn, days=60)
    assert conn.execute("SELECT count(*), sum(points) FROM pganalytics.anomalies WHERE source = 'forecast'"
                        ).fetchone() == (2, 4)
    conn.execute("INSERT INTO pganalytics.rollups_1h (instance_id, series_id, bucket, n, sum, min, max, last) "
                 "SELECT instance_id, series_id, bucket + interval '1 hour', n, sum, min, max, last "
                 "FROM pganalytics.rollups_1h WHERE series_id = %s ORDER BY bucket DESC LIMIT 1", (sid,))
    assert alerts(conn, days=1) == []
    closed = conn.execute("SELECT anomaly_type, ended_at > last_at FROM pganalytics.anomalies "
                          "WHERE source = 'forecast' AND ended_at IS NOT NULL ORDER BY 1").fetchall()
    assert closed == [("disk_full", True), ("xid_wraparound", True)]


@pytest.mark.parametrize("days, options, message", [
    (0, {}, "days must be 1 to 365"),
    (30, {"horizon": 1}, "unknown option"),
    (30, {"history": "soon"}, "bad option value"),
    (30, {"level": 1.5}, "level in"),
])
def test_forecast_alerts_refuse_bad_input(store, days, options, message):
    conn, _, _ = store
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        alerts(conn, days=days, options=options)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no instance named"):
        conn.execute("SELECT * FROM pganalytics.forecast_alerts('nobody')")
