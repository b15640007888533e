"""Anomaly events: the named types' derived metrics (anomaly_inputs), episodes turned into events
(record_anomalies) and detect_anomalies(), against a store that took two days of synthetic
samples through the collector's Sink, pg_stat_statements snapshots through ingest_query_stats
and maintain().

Instance db1 is quiet except for: database app's cache hit ratio falling from 99 % to 71 % for
8 minutes (E1), database reports' hit ratio *rising* from 90 % to 99.9 % for 10 minutes (E2,
the good direction), query 1001 going from 5 ms to 80 ms a call for 5 minutes (E3) and three
sessions waiting on a lock for 5 minutes (E4). Instance db2's cache hit ratio falls for 30
minutes (E5); its store first holds only the episode's start, the rest arrives in the test."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from pganalytics.collector.batch import RowsBatch, SamplesBatch

from . import stage

MIN = timedelta(minutes=1)


class Timeline:
    """The synthetic data's times, relative to now (detect_anomalies() looks back from now()):
    set again when the data is made, which can be long after the module is imported."""

    def __init__(self) -> None:
        self.set(datetime.now(timezone.utc))

    def set(self, now: datetime) -> None:
        self.NOW = now.replace(second=0, microsecond=0)
        self.START = self.NOW - timedelta(hours=50)
        self.LAST = int((self.NOW - self.START) / MIN) - 2     # minutes 0 .. LAST-1 have a sample (at :30)
        self.E1 = self.NOW - timedelta(minutes=120)            # app's hit ratio 71 % for 8 minutes
        self.E2 = self.NOW - timedelta(minutes=200)            # reports' hit ratio 99.9 % for 10 minutes (good)
        self.E3 = self.NOW - timedelta(minutes=60)             # query 1001 at 80 ms for 5 minutes
        self.E4 = self.NOW - timedelta(minutes=90)             # 3 lock waiters for 5 minutes
        self.DB2_START = self.NOW - timedelta(hours=6)
        self.E5 = self.NOW - timedelta(minutes=80)             # db2: app's hit ratio 60 % for 30 minutes
        self.DB2_SPLIT = self.NOW - timedelta(minutes=65)      # db2's store first has samples up to here


TL = Timeline()
MAX_CONNECTIONS = 200
TYPES = {"execution_time_spike", "cache_hit_rate_drop", "lock_contention_increase",
         "connection_pool_saturation", "high_io_wait", "high_cpu_usage", "memory_pressure",
         "replication_lag", "xid_wraparound_risk", "temp_spill", "deadlocks", "checkpoint_pressure"}


def minute(i: int) -> datetime:
    return TL.START + i * MIN


def index(t: datetime) -> int:
    return int((t - TL.START) / MIN)


def during(t: datetime, episode: datetime, minutes: int) -> bool:
    return episode <= t < episode + minutes * MIN


def noise(i: int, key: int, half: float) -> float:
    """Bounded, reproducible noise: uniform in [-half, half] for minute i and stream key."""
    return float(np.random.default_rng([key, i]).uniform(-half, half))


def hit_ratio(db: str, t: datetime, i: int) -> float:
    if db == "app":
        return 0.71 if during(t, TL.E1, 8) else 0.99 + noise(i, 1, 0.002)
    if db == "reports":
        return 0.999 if during(t, TL.E2, 10) else 0.90 + noise(i, 2, 0.004)
    return 0.60 if during(t, TL.E5, 30) else 0.98 + noise(i, 3, 0.002)  # db2's app


class Counters:
    """Cumulative counters of one instance's databases, advanced a minute at a time."""

    def __init__(self, dbs):
        self.dbs = dbs
        self.c = {db: {"blks_hit": 1e6, "blks_read": 1e4, "temp_bytes": 0.0, "temp_files": 0.0,
                       "deadlocks": 0.0, "xact_commit": 1e5} for db in dbs}
        self.ckpt = {"num_timed": 100.0, "num_requested": 3.0, "buffers_written": 1e5}

    def step(self, t: datetime, i: int) -> None:
        for db in self.dbs:
            ratio = hit_ratio(db, t, i)
            accesses = 60_000.0
            self.c[db]["blks_hit"] += round(accesses * ratio)
            self.c[db]["blks_read"] += accesses - round(accesses * ratio)
            self.c[db]["xact_commit"] += 600
        if i % 5 == 0:
            self.ckpt["num_timed"] += 1
            self.ckpt["buffers_written"] += 300


def database_samples(counters: Counters, i: int, names: dict[str, str]):
    out = []
    for db, datname in names.items():
        labels = {"datname": datname}
        out += [(f"pg_database_{k}", labels, "counter", v) for k, v in counters.c[db].items()]
        out.append(("pg_database_numbackends", labels, "gauge", (20.0 if datname == "app" else 5.0) + round(noise(i, 4, 1.4))))
    return out


def db1_batches(i: int, counters: Counters) -> list:
    t = minute(i)
    at = t + timedelta(seconds=30)
    counters.step(t, i)
    batches: list = [
        SamplesBatch("db1", "availability", at, [("pg_up", {}, "gauge", 1.0)]),
        SamplesBatch("db1", "pg_stat_database", at, database_samples(counters, i, {"app": "app", "reports": "reports"}),
                     databases=[(16384, "app"), (16385, "reports")]),
        SamplesBatch("db1", "pg_database_size", at,
                     [("pg_database_xid_age", {"datname": db}, "gauge", 5e7 + 1000.0 * i) for db in ("app", "reports")]),
        SamplesBatch("db1", "pg_stat_checkpointer", at,
                     [(f"pg_checkpointer_{k}", {}, "counter", v) for k, v in counters.ckpt.items()]),
        SamplesBatch("db1", "host", at, [
            ("host_metrics_available", {}, "gauge", 1.0),
            ("host_cpu_busy_ratio", {}, "gauge", 0.2 + noise(i, 5, 0.03)),
            ("host_cpu_iowait_ratio", {}, "gauge", 0.01 + noise(i, 6, 0.004)),
            ("host_memory_available_bytes", {}, "gauge", 6e9 + noise(i, 7, 5e7)),
            ("host_memory_total_bytes", {}, "gauge", 8e9)]),
        RowsBatch("db1", "wait_samples", at, [
            {"datname": "app", "queryid": None, "backend_type": "client backend", "state": "active",
             "wait_event_type": None, "wait_event": None, "samples": 3, "ticks": 60, "interval_s": 60.0}]),
    ]
    if i == 0:
        batches.append(RowsBatch("db1", "settings", at, [
            {"name": "max_connections", "setting": str(MAX_CONNECTIONS), "unit": None,
             "source": "configuration file", "pending_restart": False}]))
    if during(t, TL.E4, 5):
        batches.append(RowsBatch("db1", "lock_waits", at, [
            {"kind": "lock_wait", "pid": pid, "datname": "app", "state": "active", "queryid": 1001,
             "wait_event_type": "Lock", "wait_event": "transactionid", "lock_wait_s": 12.0,
             "blocking_pids": [100], "root_blocker_pids": [100], "root_blocker_pid": 100,
             "root_blocker_queryid": 1002, "chain_depth": 1} for pid in (101, 102, 103)]))
    return batches


def db2_batches(i_from: int, i_to: int) -> list:
    counters = Counters(("db2app",))
    out = []
    for i in range(index(TL.DB2_START), i_to):
        t = minute(i)
        counters.step(t, i)
        if i < i_from:
            continue
        at = t + timedelta(seconds=30)
        out += [SamplesBatch("db2", "availability", at, [("pg_up", {}, "gauge", 1.0)]),
                SamplesBatch("db2", "pg_stat_database", at, database_samples(counters, i, {"db2app": "app"}))]
    return out


def q_mean(qid: int, t: datetime, i: int) -> float:
    if qid == 1001:
        return 80.0 if during(t, TL.E3, 5) else 5.0 + noise(i, 8, 0.5)
    return 20.0 + noise(i, 9, 1.0)


@pytest.fixture(scope="module")
def loaded(server_dsn, store_template):
    """A store with db1's two days and db2's first part, cloned by each test."""
    TL.set(datetime.now(timezone.utc))
    name = f"pga_anev_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{store_template}"')
    params = psycopg.conninfo.conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo("", **params)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE pganalytics.store_settings SET value = '7 days' WHERE name = 'retention.raw'")
        conn.execute("UPDATE pganalytics.store_settings SET value = '3 days' WHERE name = 'rollup.max_catchup'")
        iid = stage.register(conn, "db1")
        stage.register(conn, "db2")
        counters = Counters(("app", "reports"))
        batches = [b for i in range(TL.LAST) for b in db1_batches(i, counters)]
        batches += db2_batches(index(TL.DB2_START), index(TL.DB2_SPLIT))
        stage.deliver_samples(dsn, batches)
        calls = {1001: 0, 1002: 0}
        total = {1001: 0.0, 1002: 0.0}
        for i in range(TL.LAST - 480, TL.LAST):
            t = minute(i)
            entries = []
            for qid, n in ((1001, 100), (1002, 50)):
                calls[qid] += n
                total[qid] += n * q_mean(qid, t, i)
                entries.append(stage.entry(qid, calls[qid], total[qid]))
            stage.ingest(conn, iid, t + timedelta(seconds=45), entries)
        stage.maintain(conn)
    yield name
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def live(databases, loaded):
    """A clone of the loaded store as maintain() left it: with the live path's events."""
    dsn = databases.create(template=loaded, prefix="anev")
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn, dsn


@pytest.fixture
def db(live):
    """The same without any event: the tests of the recording rules write their own (the live
    path's own events are compared in test_the_live_path_in_maintain_records_what_anomaly_scores_flags)."""
    conn, _ = live
    conn.execute("DELETE FROM pganalytics.anomalies")
    return live


def iid_of(conn, name="db1") -> int:
    return conn.execute("SELECT instance_id FROM pganalytics.instances WHERE name = %s", (name,)).fetchone()[0]


def inputs(conn, types=None, name="db1", start=None, end=None):
    return conn.execute("SELECT anomaly_type, subject, bucket, value, context "
                        "FROM pganalytics.anomaly_inputs(%s, %s, %s, %s)", (iid_of(conn, name), start or TL.START, end or TL.NOW, types)).fetchall()


def scored(conn, anomaly_type, subject, name="db1", start=None, end=None):
    """The points of one derived series, scored by anomaly_scores() (what the live path has)."""
    rows = [r for r in inputs(conn, [anomaly_type], name, start, end) if r[1] == subject]
    got = conn.execute("SELECT ts, value, expected, score, is_anomaly FROM pganalytics.anomaly_scores(%s, %s)",
                       ([r[2] for r in rows], [r[3] for r in rows])).fetchall()
    return [(anomaly_type, subject, *g, rows[k][4]) for k, g in enumerate(got)]


def record(conn, points, name="db1", source="live"):
    cols = list(zip(*points)) if points else [[]] * 8
    return conn.execute(
        "SELECT pganalytics.record_anomalies(%s, %s, %s::text[], %s::text[], %s::timestamptz[], %s::float8[], "
        "%s::float8[], %s::float8[], %s::boolean[], %s::jsonb[])",
        (iid_of(conn, name), source, list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]),
         list(cols[5]), list(cols[6]), [json.dumps(c) if c is not None else None for c in cols[7]])).fetchone()[0]


EVENT_COLS = ("anomaly_type, subject, source, started_at, ended_at, last_at, points, peak_at, peak_value, "
              "peak_expected, peak_score, severity, description, context")


def events(conn, name="db1"):
    cur = conn.execute(f"SELECT {EVENT_COLS} FROM pganalytics.anomalies WHERE instance_id = %s "
                       "ORDER BY started_at, anomaly_type, subject", (iid_of(conn, name),))
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def detect(conn, name="db1", types=None, period="3 hours"):
    cur = conn.execute("SELECT * FROM pganalytics.detect_anomalies(%s, %s, %s::interval)", (name, types, period))
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def synthetic(anomaly_type, subject, t0, values, expected, scores):
    """Hand-made scored points, one a minute from t0; flagged when the score is >= 0.5."""
    return [(anomaly_type, subject, t0 + k * MIN, v, e, s, s >= 0.5, None)
            for k, (v, e, s) in enumerate(zip(values, expected, scores))]


T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


# -- the types and their inputs ------------------------------------------------------------

def test_the_registry_names_the_seven_types_and_the_dbas_five(store_conn):
    rows = store_conn.execute("SELECT anomaly_type, unit, direction, template, host_dependent "
                              "FROM pganalytics.anomaly_types").fetchall()
    assert {r[0] for r in rows} == TYPES and len(rows) == len(TYPES)
    assert {r[0] for r in rows if r[2] == "down"} == {"cache_hit_rate_drop"}
    assert {r[0] for r in rows if r[4]} == {"high_io_wait", "high_cpu_usage", "memory_pressure"}
    for _, unit, _, template, _ in rows:
        assert unit and all(k in template for k in ("{what}", "{actual}", "{expected}", "{instance}", "{when}"))


def test_inputs_derive_each_metric_per_minute(db):
    conn, _ = db
    got: dict = {}
    for anomaly_type, subject, bucket, value, context in inputs(conn, start=TL.NOW - timedelta(hours=4)):
        got.setdefault((anomaly_type, subject), {})[bucket] = (value, context)
    normal = TL.E1 - 10 * MIN
    i = index(normal)
    app = got[("cache_hit_rate_drop", "datname:app")]
    accesses = 60_000.0
    assert app[normal][0] == pytest.approx(round(accesses * hit_ratio("app", normal, i)) / accesses, abs=1e-12)
    assert [app[TL.E1 + k * MIN][0] for k in range(8)] == pytest.approx([round(accesses * 0.71) / accesses] * 8)
    assert app[TL.E1][1] == {"blks_hit_per_s": pytest.approx(round(accesses * 0.71) / 60, abs=0.05),
                          "blks_read_per_s": pytest.approx(accesses * 0.29 / 60, abs=0.05)}
    used = 25.0 + round(noise(i, 4, 1.4)) * 2
    conn_sat = got[("connection_pool_saturation", "")][normal]
    assert conn_sat[0] == pytest.approx(used / (MAX_CONNECTIONS - 3))
    assert conn_sat[1]["max_connections"] == MAX_CONNECTIONS and conn_sat[1]["limit"] == "max_connections"
    q = got[("execution_time_spike", "queryid:1001")]
    assert q[normal][0] == pytest.approx(q_mean(1001, normal, i), rel=1e-9)
    assert q[TL.E3][0] == pytest.approx(80.0) and q[TL.E3][1]["calls"] == 100
    locks = got[("lock_contention_increase", "")]
    assert [locks[TL.E4 + k * MIN][0] for k in range(-1, 6)] == [0, 3, 3, 3, 3, 3, 0]
    assert locks[TL.E4][1]["root_blocker_queryid"] == 1002
    assert got[("xid_wraparound_risk", "datname:app")][normal][0] == pytest.approx((5e7 + 1000.0 * i) / 2**31)
    assert got[("high_cpu_usage", "")][normal][0] == pytest.approx(0.2 + noise(i, 5, 0.03))
    assert got[("high_io_wait", "")][normal][0] == pytest.approx(0.01 + noise(i, 6, 0.004))
    assert got[("memory_pressure", "")][normal][0] == pytest.approx(1 - (6e9 + noise(i, 7, 5e7)) / 8e9)
    assert set(got[("checkpoint_pressure", "")][normal][1]) >= {"requested_15m", "timed_15m"}
    assert got[("checkpoint_pressure", "")][normal][0] == 0 and got[("checkpoint_pressure", "")][normal][1]["timed_15m"] == 3
    assert got[("deadlocks", "datname:app")][normal][0] == 0 and got[("temp_spill", "datname:app")][normal][0] == 0
    # The store has no replication series for db1: that type has no rows, nothing invented.
    assert not any(k[0] == "replication_lag" for k in got)
    # One value per complete minute: nothing at or after the last rolled-up minute.
    done = conn.execute("SELECT rolled_until FROM pganalytics.rollup_progress WHERE instance_id = %s",
                        (iid_of(conn),)).fetchone()[0]
    assert max(app) == done - MIN


def test_inputs_come_sorted_and_filtered(db):
    conn, _ = db
    rows = inputs(conn, start=TL.NOW - timedelta(hours=1))
    keys = [(r[0], r[1], r[2]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    only = inputs(conn, ["deadlocks"], start=TL.NOW - timedelta(hours=1))
    assert only and {r[0] for r in only} == {"deadlocks"}
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="anomaly_inputs: unknown anomaly type.*nope.*known: .*cache_hit_rate_drop"):
        inputs(conn, ["nope"])


def test_connection_limit_follows_settings_and_the_pooler_label(db):
    conn, _ = db
    conn.execute("UPDATE pganalytics.instances SET labels = labels || '{\"pooler_max_connections\": \"50\"}' "
                 "WHERE name = 'db1'")
    rows = inputs(conn, ["connection_pool_saturation"], start=TL.E1 - 10 * MIN, end=TL.E1 - 9 * MIN)
    i = index(TL.E1 - 10 * MIN)
    assert len(rows) == 1 and rows[0][3] == pytest.approx((25.0 + 2 * round(noise(i, 4, 1.4))) / 50)
    assert rows[0][4]["limit"] == "pooler_max_connections"


# -- events from scored points --------------------------------------------------------------

def test_an_episode_is_one_event_with_its_span_peak_and_sentence(store_conn):
    stage.register(store_conn, "db1")
    values = [0.99] * 5 + [0.80, 0.71, 0.75, 0.72, 0.73, 0.74, 0.76, 0.78] + [0.99, 0.985, 0.99, 0.99]
    scores = [0.01] * 5 + [0.9] + [0.09] * 7 + [0.01] * 4  # the detector damps after its alert
    summary = record(store_conn, synthetic("cache_hit_rate_drop", "datname:app", T0, values, [0.99] * 17, scores))
    assert summary == {"points": 17, "opened": 1, "closed": 1, "merged": 0, "events": 1}
    (e,) = events(store_conn)
    assert (e["started_at"], e["ended_at"]) == (T0 + 5 * MIN, T0 + 13 * MIN)
    assert (e["peak_at"], e["peak_value"], e["peak_expected"]) == (T0 + 6 * MIN, 0.71, 0.99)
    assert e["severity"] == 0.9 and e["points"] == 8 and e["source"] == "live"
    assert e["description"] == ("cache hit ratio in database app fell to 71 % (expected 99 %) on instance db1 "
                                "from 2026-11-02 10:05 to 10:13 UTC")


def test_a_rise_in_the_good_direction_is_no_event(store_conn):
    stage.register(store_conn, "db1")
    up = synthetic("cache_hit_rate_drop", "datname:app", T0, [0.90] * 3 + [0.999] * 5 + [0.90] * 4,
                   [0.90] * 12, [0.01] * 3 + [0.95] * 5 + [0.01] * 4)
    down = synthetic("execution_time_spike", "queryid:7", T0, [5.0] * 3 + [0.5] * 5 + [5.0] * 4,
                     [5.0] * 12, [0.01] * 3 + [0.95] * 5 + [0.01] * 4)
    assert record(store_conn, up + down)["opened"] == 0
    # the same flags the other way round are events
    worse = [(t, s, ts, 2 * e - v, e, sc, f, c) for t, s, ts, v, e, sc, f, c in up + down]
    assert record(store_conn, worse)["opened"] == 2
    assert {(e["anomaly_type"], e["started_at"]) for e in events(store_conn)} == {
        ("cache_hit_rate_drop", T0 + 3 * MIN), ("execution_time_spike", T0 + 3 * MIN)}


def test_too_small_a_change_is_no_event(store_conn):
    stage.register(store_conn, "db1")
    tiny = synthetic("cache_hit_rate_drop", "datname:app", T0, [0.999, 0.995, 0.999], [0.999] * 3, [0.01, 0.99, 0.01])
    fast = synthetic("execution_time_spike", "queryid:7", T0, [0.2, 1.0, 0.2], [0.2] * 3, [0.01, 0.99, 0.01])
    slow = synthetic("execution_time_spike", "queryid:8", T0, [100.0, 120.0, 100.0], [100.0] * 3, [0.01, 0.99, 0.01])
    assert record(store_conn, tiny + fast + slow)["opened"] == 0
    # twice as slow is a spike
    assert record(store_conn, synthetic("execution_time_spike", "queryid:8", T0 + 5 * MIN, [100.0, 200.0, 100.0],
                                        [100.0] * 3, [0.01, 0.99, 0.01]))["opened"] == 1


def test_points_without_a_value_or_an_expectation_open_nothing(store_conn):
    stage.register(store_conn, "db1")
    nan = float("nan")
    pts = synthetic("deadlocks", "datname:app", T0, [nan, 5.0, 5.0], [0.0, nan, None], [0.99, 0.99, nan])
    pts[2] = (*pts[2][:6], True, None)  # flagged, but no expected value to depart from
    assert record(store_conn, pts)["opened"] == 0
    assert record(store_conn, synthetic("deadlocks", "datname:app", T0 + 5 * MIN, [5.0], [0.0], [0.99]))["opened"] == 1


def test_recording_the_same_or_overlapping_points_again_changes_nothing(store_conn):
    stage.register(store_conn, "db1")
    values = [5.0] * 10 + [80.0] * 5 + [5.0] * 10
    pts = synthetic("execution_time_spike", "queryid:1", T0, values, [5.0] * 25, [0.0] * 10 + [0.8] + [0.08] * 14)
    record(store_conn, pts)
    first = events(store_conn)
    assert len(first) == 1 and first[0]["ended_at"] == T0 + 15 * MIN
    assert record(store_conn, pts) == {"points": 25, "opened": 0, "closed": 0, "merged": 0, "events": 0}
    record(store_conn, pts[8:20])
    record(store_conn, pts[12:])
    assert events(store_conn) == first


def test_minute_by_minute_is_the_same_as_all_at_once(store_conn):
    stage.register(store_conn, "db1")
    values = [0.99] * 4 + [0.5] * 6 + [0.99, 0.6, 0.99, 0.99, 0.99, 0.99] + [0.3, 0.3] + [0.99] * 4
    scores = [0.0] * 4 + [0.9] + [0.05] * 5 + [0.0] * 6 + [0.7, 0.1] + [0.0] * 4
    pts = synthetic("cache_hit_rate_drop", "datname:app", T0, values, [0.99] * len(values), scores)
    record(store_conn, pts)
    at_once = events(store_conn)
    store_conn.execute("DELETE FROM pganalytics.anomalies")
    for p in pts:  # the live path: each minute, the newest point
        record(store_conn, [p])
    live = events(store_conn)
    assert [(e["started_at"], e["ended_at"]) for e in at_once] == [(T0 + 4 * MIN, T0 + 12 * MIN), (T0 + 16 * MIN, T0 + 18 * MIN)]
    assert live == at_once


def test_an_episode_still_going_stays_open_and_closes_when_the_metric_is_back(store_conn):
    stage.register(store_conn, "db1")
    values = [5.0] * 3 + [50.0] * 10 + [5.0] * 5
    pts = synthetic("execution_time_spike", "queryid:9", T0, values, [5.0] * 18, [0.0] * 3 + [0.9] + [0.09] * 14)
    record(store_conn, pts[:8])
    (e,) = events(store_conn)
    assert e["ended_at"] is None and e["last_at"] == T0 + 7 * MIN and "since 2026-11-02 10:03 UTC" in e["description"]
    record(store_conn, pts[8:14])  # back for one minute: not yet closed
    assert events(store_conn)[0]["ended_at"] is None
    record(store_conn, pts[14:])
    (e,) = events(store_conn)
    assert e["ended_at"] == T0 + 13 * MIN and "from 2026-11-02 10:03 to 10:13 UTC" in e["description"]
    assert e["points"] == 10


def test_a_hard_limit_is_an_anomaly_whatever_the_score(store_conn):
    stage.register(store_conn, "db1")
    # XID age creeping past half way to wraparound: the detector has learnt the trend (score 0)
    values = [0.455 + 0.01 * k for k in range(12)]
    pts = synthetic("xid_wraparound_risk", "datname:app", T0, values, [0.45] * 12, [0.0] * 12)
    record(store_conn, pts)
    (e,) = events(store_conn)
    assert e["started_at"] == T0 + 5 * MIN and e["ended_at"] is None and e["severity"] == 0.5
    assert e["peak_value"] == pytest.approx(0.565) and e["points"] == 7
    assert "XID age (share of the wraparound horizon) in database app rose to 56.5 % (expected 45 %)" in e["description"]


def test_an_open_event_whose_series_went_silent_closes(store_conn):
    stage.register(store_conn, "db1")
    record(store_conn, synthetic("execution_time_spike", "queryid:1", T0, [5.0, 80.0, 80.0], [5.0] * 3, [0.0, 0.9, 0.1]))
    assert events(store_conn)[0]["ended_at"] is None
    # An hour and more later the type's other queries still report; query 1 does not.
    record(store_conn, synthetic("execution_time_spike", "queryid:2", T0 + 62 * MIN, [5.0], [5.0], [0.0]))
    assert events(store_conn)[0]["ended_at"] is None  # an hour: not yet
    record(store_conn, synthetic("execution_time_spike", "queryid:2", T0 + 63 * MIN, [5.0], [5.0], [0.0]))
    (e,) = events(store_conn)
    assert e["ended_at"] == T0 + 3 * MIN and e["context"]["closed_by"] == "no data for 01:00:00"


def test_an_earlier_start_found_later_extends_the_event(store_conn):
    stage.register(store_conn, "db1")
    values = [5.0] * 3 + [60.0] * 8 + [5.0] * 4
    late = synthetic("execution_time_spike", "queryid:1", T0, values, [5.0] * 15, [0.0] * 3 + [0.1] * 2 + [0.9] + [0.1] * 9)
    record(store_conn, late[5:])  # one scoring saw the episode from 10:05
    assert events(store_conn)[0]["started_at"] == T0 + 5 * MIN
    early = synthetic("execution_time_spike", "queryid:1", T0, values, [5.0] * 15, [0.0] * 3 + [0.9] + [0.1] * 11)
    summary = record(store_conn, early, source="detect")  # another saw it from 10:03
    (e,) = events(store_conn)
    assert summary["merged"] == 1 and (e["started_at"], e["ended_at"]) == (T0 + 3 * MIN, T0 + 11 * MIN)
    assert e["points"] == 8 and e["source"] == "live"


@pytest.mark.parametrize("change, message", [
    ({"p_type": ["nope"]}, "unknown anomaly type.*nope.*known: .*cache_hit_rate_drop"),
    ({"p_value": [1.0, 2.0]}, "as long as each other"),
    ({"p_ts": [None]}, "must not hold NULLs"),
    ({"p_source": "Live!"}, "source name"),
])
def test_record_refuses_bad_input(store_conn, change, message):
    iid = stage.register(store_conn, "db1")
    args = {"p_source": "live", "p_type": ["deadlocks"], "p_subject": [""], "p_ts": [T0], "p_value": [1.0],
            "p_expected": [0.0], "p_score": [0.9], "p_flag": [True]}
    args.update(change)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"record_anomalies: .*{message}"):
        store_conn.execute("SELECT pganalytics.record_anomalies(%s, %s, %s::text[], %s::text[], %s::timestamptz[], "
                           "%s::float8[], %s::float8[], %s::float8[], %s::boolean[])", (iid, *args.values()))
    twice = synthetic("deadlocks", "", T0, [1.0, 1.0], [0.0, 0.0], [0.9, 0.9])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="point deadlocks '' at .* is given twice"):
        record(store_conn, [twice[0], twice[0]])


# -- against the loaded store ---------------------------------------------------------------

def test_the_live_path_in_maintain_records_what_anomaly_scores_flags(live, databases, loaded):
    """Parity of the two ways to call the detector: maintain() scored each new minute of every
    derived series against stored state (detect_live()); anomaly_scores() over each whole series
    flags the same points, so recording its points gives the very events the live path wrote."""
    conn, _ = live
    got = events(conn)
    assert {(e["anomaly_type"], e["subject"]) for e in got} >= {("cache_hit_rate_drop", "datname:app")}, got
    assert {e["source"] for e in got} == {"live"}
    keys = sorted({(r[0], r[1]) for r in inputs(conn)})
    points = [p for key in keys for p in scored(conn, *key)]
    conn.execute("DELETE FROM pganalytics.anomalies")
    record(conn, points)
    assert events(conn) == got
    state = conn.execute("SELECT b.keys, b.scored_until FROM pganalytics.anomaly_state_blocks b "
                         "WHERE b.instance_id = %s", (iid_of(conn),)).fetchone()
    assert state[0] == sorted(f"{t}/{s}" for t, s in keys)
    assert state[1] == conn.execute("SELECT rolled_until FROM pganalytics.rollup_progress WHERE instance_id = %s",
                                    (iid_of(conn),)).fetchone()[0]


def test_live_scoring_of_stored_data_gives_the_episode(db):
    conn, _ = db
    pts = scored(conn, "cache_hit_rate_drop", "datname:app")
    assert {p[2]: p[6] for p in pts}[TL.E1]  # the detector flags the drop
    record(conn, pts)
    (e,) = events(conn)
    assert (e["started_at"], e["ended_at"]) == (TL.E1, TL.E1 + 8 * MIN)
    assert e["peak_value"] == pytest.approx(0.71, abs=1e-4) and e["peak_expected"] == pytest.approx(0.99, abs=0.003)
    assert e["severity"] >= 0.5 and e["context"]["blks_read_per_s"] > 100
    assert e["description"].startswith("cache hit ratio in database app fell to 71 % (expected 99")
    assert f"on instance db1 from {TL.E1:%Y-%m-%d %H:%M} to " in e["description"]


def test_detect_finds_each_episode_once_and_nothing_on_quiet_series(db):
    conn, _ = db
    found = detect(conn)
    by_type = {(e["anomaly_type"], e["subject"]): e for e in found}
    assert set(by_type) == {("cache_hit_rate_drop", "datname:app"), ("execution_time_spike", "queryid:1001"),
                            ("lock_contention_increase", "")}, found
    for key, start, minutes in ((("cache_hit_rate_drop", "datname:app"), TL.E1, 8),
                                (("execution_time_spike", "queryid:1001"), TL.E3, 5),
                                (("lock_contention_increase", ""), TL.E4, 5)):
        e = by_type[key]
        assert abs(e["started_at"] - start) <= MIN and abs(e["ended_at"] - (start + minutes * MIN)) <= 2 * MIN, e
        assert e["source"] == "detect" and 0.5 <= e["severity"] <= 1
    spike = by_type[("execution_time_spike", "queryid:1001")]
    assert spike["actual"] == pytest.approx(80.0) and spike["expected"] == pytest.approx(5.0, abs=0.5)
    assert spike["unit"] == "ms" and spike["context"]["query"] == "SELECT 1001"
    assert spike["description"].startswith("mean execution time of query 1001 rose to 80 ms (expected 5")
    locks = by_type[("lock_contention_increase", "")]
    assert locks["actual"] == 3 and locks["description"].startswith("sessions waiting on a lock rose to 3 (expected 0)")


def test_the_good_direction_rise_in_stored_data_is_flagged_but_no_event(db):
    conn, _ = db
    pts = scored(conn, "cache_hit_rate_drop", "datname:reports")
    at = {p[2]: p for p in pts}
    assert at[TL.E2][6] and at[TL.E2][3] > at[TL.E2][4] + 0.05  # surprising, and up
    record(conn, pts)
    assert events(conn) == []
    # detect_anomalies scores it too (it lies in the 6 hours before the period)
    assert not [e for e in detect(conn, types=["cache_hit_rate_drop"]) if e["subject"] == "datname:reports"]


def test_detect_twice_and_after_the_live_path_makes_no_duplicate(db):
    conn, _ = db
    record(conn, scored(conn, "cache_hit_rate_drop", "datname:app"))  # the live path had it
    first = detect(conn)
    second = detect(conn)
    assert first == second and len(first) == 3
    cache = [e for e in first if e["anomaly_type"] == "cache_hit_rate_drop"]
    assert len(cache) == 1 and cache[0]["source"] == "live"
    assert conn.execute("SELECT count(*) FROM pganalytics.anomalies").fetchone()[0] == 3


def test_detect_an_episode_still_going_then_back(db):
    conn, dsn = db
    (e,) = detect(conn, "db2", period="2 hours")
    assert e["anomaly_type"] == "cache_hit_rate_drop" and abs(e["started_at"] - TL.E5) <= MIN
    assert e["ended_at"] is None and "since" in e["description"]
    stage.deliver_samples(dsn, db2_batches(index(TL.DB2_SPLIT), TL.LAST))
    stage.maintain(conn)
    (again,) = detect(conn, "db2", period="2 hours")
    assert again["anomaly_id"] == e["anomaly_id"] and again["started_at"] == e["started_at"]
    assert abs(again["ended_at"] - (TL.E5 + 30 * MIN)) <= 2 * MIN and "since" not in again["description"]
    assert again["actual"] == pytest.approx(0.60, abs=1e-4)


def test_detect_filters_types_and_period(db):
    conn, _ = db
    detect(conn)
    assert {e["anomaly_type"] for e in detect(conn, types=["execution_time_spike"])} == {"execution_time_spike"}
    # TL.E3 (an hour ago) overlaps the last 70 minutes, TL.E1 (two hours ago) does not
    assert {e["anomaly_type"] for e in detect(conn, period="70 minutes")} == {"execution_time_spike"}
    assert detect(conn, types=["replication_lag", "high_cpu_usage"]) == []


@pytest.mark.parametrize("name, types, period, message", [
    ("nobody", None, "1 hour", "no instance named 'nobody'"),
    (None, None, "1 hour", "an instance name is required"),
    ("db1", ["cache_hit_rate_drop", "cpu_spike"], "1 hour", "unknown anomaly type.*'cpu_spike'; known: cache_hit_rate_drop, checkpoint_pressure, .*xid_wraparound_risk"),
    ("db1", None, "0", "the period must be more than 0 and at most 31 days"),
    ("db1", None, "-1 hour", "the period must be"),
    ("db1", None, "32 days", "the period must be"),
    ("db1", None, None, "the period must be"),
])
def test_detect_refuses_bad_input(db, name, types, period, message):
    conn, _ = db
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"detect_anomalies: {message}"):
        conn.execute("SELECT * FROM pganalytics.detect_anomalies(%s, %s, %s::interval)", (name, types, period))


# -- the scorer and the privileges ------------------------------------------------------------

def test_many_series_at_once_score_as_each_alone(store_conn):
    rng = np.random.default_rng(3)
    ts = [T0 + k * MIN for k in range(300)]
    a = list(rng.normal(100, 5, 300))
    a[200] += 90
    b = list(rng.normal(10, 1, 300))
    keep = [k for k in range(300) if k % 7]  # b has gaps
    series = [1] * 300 + [2] * len(keep)
    epoch = [t.timestamp() for t in ts] + [ts[k].timestamp() for k in keep]
    values = a + [b[k] for k in keep]
    together = store_conn.execute("SELECT i, expected, score, is_anomaly FROM pganalytics.anomaly_event_scores(%s, %s, %s) "
                                  "ORDER BY i", (series, epoch, values)).fetchall()
    alone = [store_conn.execute("SELECT expected, score, is_anomaly FROM pganalytics.anomaly_scores(%s, %s)", (t, v)).fetchall()
             for t, v in ((ts, a), ([ts[k] for k in keep], [b[k] for k in keep]))]
    flat = alone[0] + alone[1]
    assert [r[0] for r in together] == list(range(1, len(values) + 1))
    assert [r[1] for r in together] == pytest.approx([r[0] for r in flat], rel=1e-9, abs=1e-12)
    assert [r[2] for r in together] == pytest.approx([r[1] for r in flat], rel=1e-9, abs=1e-12)
    assert [r[3] for r in together] == [r[2] for r in flat] and together[200][3]
    emitted = store_conn.execute("SELECT i FROM pganalytics.anomaly_event_scores(%s, %s, %s, %s)",
                                 (series, epoch, values, ts[250].timestamp())).fetchall()
    assert [r[0] for r in emitted] == [k + 1 for k in range(len(values)) if epoch[k] >= ts[250].timestamp()]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="anomaly_event_scores: a series has two points at one time"):
        store_conn.execute("SELECT * FROM pganalytics.anomaly_event_scores(%s, %s, %s)", ([1, 1], [0.0, 0.0], [1.0, 2.0]))


def test_admins_read_events_and_call_the_functions_but_write_only_through_them(store_conn):
    funcs = {
        "pganalytics.anomaly_inputs(int, timestamptz, timestamptz, text[], bigint[])": (True, "s"),
        "pganalytics.record_anomalies(int, text, text[], text[], timestamptz[], float8[], float8[], float8[], boolean[], jsonb[])": (True, "v"),
        "pganalytics.detect_anomalies(text, text[], interval)": (True, "v"),
        "pganalytics.anomaly_event_text(text, text, text, float8, float8, timestamptz, timestamptz)": (False, "s"),
        "pganalytics.anomaly_event_scores(int[], float8[], float8[], float8, jsonb, text[], jsonb)": (False, "i"),
    }
    for sig, (definer, volatility) in funcs.items():
        row = store_conn.execute(
            "SELECT p.prosecdef, p.provolatile, p.proconfig, has_function_privilege('pganalytics_admin', p.oid, 'EXECUTE'), "
            "has_function_privilege('pganalytics_gateway', p.oid, 'EXECUTE'), "
            "has_function_privilege('pganalytics_collector', p.oid, 'EXECUTE') "
            "FROM pg_proc p WHERE p.oid = %s::regprocedure", (sig,)).fetchone()
        assert row == (definer, volatility, ["search_path=pg_catalog, pg_temp"], True, False, False), sig
    assert store_conn.execute("SELECT has_table_privilege('pganalytics_admin', 'pganalytics.anomalies', 'SELECT'), "
                              "has_table_privilege('pganalytics_admin', 'pganalytics.anomalies', 'INSERT'), "
                              "has_table_privilege('pganalytics_admin', 'pganalytics.anomaly_types', 'SELECT'), "
                              "has_table_privilege('pganalytics_gateway', 'pganalytics.anomalies', 'SELECT')").fetchone() \
        == (True, False, True, False)
