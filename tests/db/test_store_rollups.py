"""maintain(): rollups 1m/5m/15m/1h from the frames, per-series state, late frames, one call at
a time, a killed call redone without double counting, retention by dropping partitions; and
read_series() at every resolution. Data goes in through the collector's real Sink."""
from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from pganalytics.collector.batch import SamplesBatch
from pganalytics.collector.sink import Sink

# Recent enough to be inside every retention, on a whole hour so buckets are easy to name.
BASE = (datetime.now(timezone.utc) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
STEP = 10  # seconds between snapshots


def gauge(i: int) -> float:
    return 100.0 + 10 * math.sin(i / 7) + (i % 5)


def counter(i: int) -> float:
    return 1000.0 + 3.0 * i * STEP + (i % 3)  # ~3/s, never decreasing


def batch(name: str, i: int, extra: float | None = None) -> SamplesBatch:
    samples = [("load", {"cpu": "0"}, "gauge", gauge(i)), ("load", {"cpu": "1"}, "gauge", 2 * gauge(i)),
               ("xacts_total", {}, "counter", counter(i))]
    if extra is not None:
        samples.append(("odd", {}, "gauge", extra))
    return SamplesBatch(name, "host", BASE + timedelta(seconds=STEP * i), samples)


def deliver(dsn: str, batches) -> int:
    with psycopg.connect(dsn) as conn:
        sink = Sink(conn)
        with sink.transaction():
            stored = sink.deliver_group(list(batches))
    return stored


@pytest.fixture
def loaded(store_conn, store_dsn):
    """Instance r1 with 30 minutes of snapshots every 10 s, rolled up."""
    store_conn.execute("SELECT pganalytics.register_instance('r1', 'service=r1')")
    deliver(store_dsn, [batch("r1", i) for i in range(180)])
    summary = store_conn.execute("SELECT pganalytics.maintain()").fetchone()[0]
    return summary


def expected_minutes(values: list[float]) -> dict[int, list[float]]:
    by_minute: dict[int, list[float]] = {}
    for i, v in enumerate(values):
        by_minute.setdefault(i * STEP // 60, []).append(v)
    return by_minute


def series_id(conn, metric: str, labels: str = "{}") -> int:
    return conn.execute("SELECT series_id FROM pganalytics.series WHERE metric = %s AND labels = %s::jsonb",
                        (metric, labels)).fetchone()[0]


def test_minutes_are_rolled_up_once_complete(store_conn, loaded):
    # The newest sample is at +29:50; with rollup.settle = 1 min, minutes up to 28:00 are complete.
    assert loaded["instance_minutes"] == 28 and not loaded["behind"]
    sid = series_id(store_conn, "load", '{"cpu": "0"}')
    rows = store_conn.execute("SELECT bucket, n, sum, min, max, last FROM pganalytics.rollups_1m "
                              "WHERE series_id = %s ORDER BY bucket", (sid,)).fetchall()
    minutes = expected_minutes([gauge(i) for i in range(180)])
    assert len(rows) == 28
    for (bucket, n, total, lo, hi, last), m in zip(rows, range(28)):
        assert bucket == BASE + timedelta(minutes=m)
        assert n == len(minutes[m]) == 6
        assert total == pytest.approx(sum(minutes[m]))
        assert (lo, hi, last) == (min(minutes[m]), max(minutes[m]), minutes[m][-1])


def test_coarser_levels_hold_complete_buckets_only(store_conn, loaded):
    sid = series_id(store_conn, "load", '{"cpu": "0"}')
    five = store_conn.execute("SELECT bucket, n, sum, min, max, last FROM pganalytics.rollups_5m "
                              "WHERE series_id = %s ORDER BY bucket", (sid,)).fetchall()
    values = [gauge(i) for i in range(180)]
    assert [r[0] for r in five] == [BASE + timedelta(minutes=5 * k) for k in range(5)]  # 25:00-30:00 not complete
    for k, (_, n, total, lo, hi, last) in enumerate(five):
        part = values[30 * k:30 * (k + 1)]
        assert (n, lo, hi, last) == (30, min(part), max(part), part[-1])
        assert total == pytest.approx(sum(part))
    fifteen = store_conn.execute("SELECT bucket, n FROM pganalytics.rollups_15m WHERE series_id = %s",
                                 (sid,)).fetchall()
    assert fifteen == [(BASE, 90)]
    assert store_conn.execute("SELECT count(*) FROM pganalytics.rollups_1h").fetchone()[0] == 0


def test_coarser_levels_probe_each_series_not_the_whole_day(store_conn):
    """A completed 5m bucket is read series by series through the key (instance_id, series_id,
    bucket): a few index pages per series, not the instance's whole day of 1m rows (which a
    scan on instance_id alone walks, at every call of every level)."""
    nseries = 20
    day = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    store_conn.execute("SELECT pganalytics.register_instance('d1', 'service=d1')")
    iid = store_conn.execute("SELECT instance_id FROM pganalytics.instances WHERE name = 'd1'").fetchone()[0]
    store_conn.execute("INSERT INTO pganalytics.series (instance_id, metric, labels) "
                       "SELECT %s, 'm', jsonb_build_object('k', k) FROM generate_series(1, %s) k", (iid, nseries))
    store_conn.execute("SELECT pganalytics.ensure_partitions('pganalytics.rollups_1m'::regclass, %s, %s)",
                       (day, day + timedelta(days=1)))
    store_conn.execute("INSERT INTO pganalytics.rollups_1m (instance_id, series_id, bucket, n, sum, min, max, last) "
                       "SELECT s.instance_id, s.series_id, %s + m * interval '1 minute', 6, 6 * m, m, m + 1, m "
                       "FROM pganalytics.series s, generate_series(0, 1439) m WHERE s.instance_id = %s "
                       "ORDER BY m, s.series_id", (day, iid))  # minute by minute, as maintain() writes
    part = f"pganalytics.rollups_1m_p{day:%Y%m%d}"
    store_conn.execute(f"VACUUM ANALYZE {part}")
    pages = store_conn.execute("SELECT sum(relpages) FROM pg_class WHERE oid IN (%s::regclass, %s::regclass)",
                               (part, part + "_pkey")).fetchone()[0]
    bound = 3 * nseries + 10  # per series: root, leaf, now and then the next leaf; the bucket's heap pages
    assert pages > 4 * bound  # the day is big enough that walking it (index or heap) would show

    def pages_read():
        store_conn.execute("SELECT pg_stat_force_next_flush()")
        store_conn.execute("SELECT 1")
        return store_conn.execute("SELECT heap_blks_hit + heap_blks_read + coalesce(idx_blks_hit + idx_blks_read, 0) "
                                  "FROM pg_statio_user_tables WHERE relid = %s::regclass", (part,)).fetchone()[0]
    noon = day + timedelta(hours=12)
    before = pages_read()
    store_conn.execute("SELECT pganalytics.roll_up_coarser(%s, %s, %s, %s)",
                       ([iid], [noon - timedelta(minutes=1)], [noon], [noon]))
    read = pages_read() - before
    assert read <= bound
    rows = store_conn.execute("SELECT bucket, n, sum, min, max, last FROM pganalytics.rollups_5m "
                              "WHERE instance_id = %s", (iid,)).fetchall()
    m = 715  # 11:55 .. 11:59
    assert rows == [(noon - timedelta(minutes=5), 30, 6.0 * sum(range(m, m + 5)), m, m + 5, m + 4)] * nseries


def test_series_state_is_welford_and_ewma_over_minutes(store_conn, loaded):
    sid = series_id(store_conn, "load", '{"cpu": "0"}')
    n, mean, m2, ewma, last_value, last_bucket = store_conn.execute(
        "SELECT n, mean, m2, ewma, last_value, last_bucket FROM pganalytics.series_state WHERE series_id = %s",
        (sid,)).fetchone()
    minutes = expected_minutes([gauge(i) for i in range(180)])
    x = np.array([np.mean(minutes[m]) for m in range(28)])
    assert n == 28
    assert mean == pytest.approx(x.mean())
    assert m2 / (n - 1) == pytest.approx(x.var(ddof=1))
    expect = x[0]
    for v in x:
        expect = 0.9 * expect + 0.1 * v
    assert ewma == pytest.approx(expect)
    assert last_value == pytest.approx(x[-1]) and last_bucket == BASE + timedelta(minutes=27)


def test_state_is_the_same_whether_minutes_come_one_call_or_many(store_conn, store_dsn, loaded):
    """A backlog (r1: 28 minutes in one call, folded minute by minute inside it) gives the state
    a call after each minute gives (r2)."""
    store_conn.execute("SELECT pganalytics.register_instance('r2', 'service=r2')")
    for minute in range(30):
        deliver(store_dsn, [batch("r2", i) for i in range(6 * minute, 6 * (minute + 1))])
        summary = store_conn.execute("SELECT pganalytics.maintain()").fetchone()[0]
        assert summary["instance_minutes"] == (1 if minute >= 2 else 0)
    for metric, labels in (("load", '{"cpu": "1"}'), ("xacts_total", "{}")):
        one, many = (store_conn.execute(
            "SELECT s.n, s.mean, s.m2, s.ewma, s.last_value FROM pganalytics.series_state s "
            "JOIN pganalytics.series r USING (instance_id, series_id) JOIN pganalytics.instances i USING (instance_id) "
            "WHERE i.name = %s AND r.metric = %s AND r.labels = %s::jsonb", (name, metric, labels)).fetchone()
            for name in ("r1", "r2"))
        assert one[0] == many[0] and one[1:] == pytest.approx(many[1:])


def test_counters_feed_rates(store_conn, loaded):
    sid = series_id(store_conn, "xacts_total")
    n, mean = store_conn.execute("SELECT n, mean FROM pganalytics.series_state WHERE series_id = %s",
                                 (sid,)).fetchone()
    ends = [counter(6 * m + 5) for m in range(28)]
    rates = [(b - a) / 60 for a, b in zip(ends, ends[1:])]
    assert n == 27  # the first minute has no rate
    assert mean == pytest.approx(np.mean(rates))


def test_late_frames_are_folded_in_and_state_is_not_counted_twice(store_conn, store_dsn, loaded):
    sid = series_id(store_conn, "load", '{"cpu": "0"}')
    state_before = store_conn.execute("SELECT n, mean, m2 FROM pganalytics.series_state WHERE series_id = %s",
                                      (sid,)).fetchone()
    # A snapshot at +2:05 of another source arrives after minute 2 was rolled up.
    late = SamplesBatch("r1", "late_src", BASE + timedelta(minutes=2, seconds=5),
                        [("load", {"cpu": "0"}, "gauge", 1000.0)])
    assert deliver(store_dsn, [late]) == 1
    assert deliver(store_dsn, [late]) == 0  # and again: already delivered
    summary = store_conn.execute("SELECT pganalytics.maintain()").fetchone()[0]
    assert summary["late_minutes"] == 1
    row = store_conn.execute("SELECT n, max, last FROM pganalytics.rollups_1m WHERE series_id = %s AND bucket = %s",
                             (sid, BASE + timedelta(minutes=2))).fetchone()
    assert row[0] == 7 and row[1] == 1000.0
    assert store_conn.execute("SELECT n, max FROM pganalytics.rollups_5m WHERE series_id = %s AND bucket = %s",
                              (sid, BASE)).fetchone() == (31, 1000.0)
    assert store_conn.execute("SELECT max FROM pganalytics.rollups_15m WHERE series_id = %s AND bucket = %s",
                              (sid, BASE)).fetchone()[0] == 1000.0
    # a third run finds nothing late again
    assert store_conn.execute("SELECT pganalytics.maintain()").fetchone()[0]["late_minutes"] == 0
    assert store_conn.execute("SELECT n, mean, m2 FROM pganalytics.series_state WHERE series_id = %s",
                              (sid,)).fetchone() == state_before


def test_a_second_concurrent_call_returns_at_once(store_conn, store_dsn, loaded):
    with psycopg.connect(store_dsn) as holder:
        holder.execute("SELECT pganalytics.maintain()")  # its transaction stays open
        started = time.monotonic()
        assert store_conn.execute("SELECT pganalytics.maintain()").fetchone()[0] == {
            "skipped": "another maintain() is running"}
        assert time.monotonic() - started < 5
        holder.rollback()


def test_a_killed_call_is_redone_without_double_counting(store_conn, store_dsn):
    store_conn.execute("SELECT pganalytics.register_instance('k1', 'service=k1')")
    wide = [SamplesBatch("k1", "host", BASE + timedelta(seconds=i),
                         [("w", {"k": str(k)}, "gauge", float(i + k)) for k in range(200)]) for i in range(3000)]
    deliver(store_dsn, wide)
    with psycopg.connect(store_dsn, autocommit=True) as victim:
        pid = victim.info.backend_pid
        errors = []

        def run():
            try:
                victim.execute("SELECT pganalytics.maintain()")
            except psycopg.Error as exc:
                errors.append(exc)
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # kill it while it writes rollups
            if store_conn.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'relation' "
                                  "AND relation::regclass::text LIKE 'pganalytics.rollups_1m%%' AND granted",
                                  (pid,)).fetchone()[0]:
                break
            time.sleep(0.005)
        store_conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        worker.join()
    assert errors, "maintain() finished before it could be killed: give it more data"
    assert store_conn.execute("SELECT count(*) FROM pganalytics.rollups_1m").fetchone()[0] == 0
    store_conn.execute("SELECT pganalytics.maintain()")
    sums = store_conn.execute("SELECT sum(n), sum(sum) FROM pganalytics.rollups_1m").fetchone()
    # 48 complete minutes (the newest sample is at +49:59, settle 1 min) of 60 samples of 200 series
    assert sums[0] == 48 * 60 * 200
    assert sums[1] == pytest.approx(sum(float(i + k) for i in range(48 * 60) for k in range(200)))


def test_retention_drops_whole_partitions(store_conn, store_dsn, loaded):
    old = datetime.now(timezone.utc) - timedelta(days=4)
    deliver(store_dsn, [SamplesBatch("r1", "host", old, [("load", {"cpu": "0"}, "gauge", 1.0)])])
    with psycopg.connect(store_dsn) as conn:  # and a ledger row of that day (sample frames need none)
        iid = conn.execute("SELECT instance_id FROM pganalytics.instances WHERE name = 'r1'").fetchone()[0]
        assert conn.execute("SELECT pganalytics.begin_snapshot(%s, 'settings', %s)", (iid, old)).fetchone()[0]
    day = old.strftime("%Y%m%d")
    assert store_conn.execute("SELECT to_regclass(%s)", (f"pganalytics.sample_frames_p{day}",)).fetchone()[0]
    summary = store_conn.execute("SELECT pganalytics.maintain()").fetchone()[0]
    assert f"pganalytics.sample_frames_p{day}" in summary["dropped"]
    assert f"pganalytics.snapshots_p{day}" in summary["dropped"]
    assert store_conn.execute("SELECT to_regclass(%s)", (f"pganalytics.sample_frames_p{day}",)).fetchone()[0] is None
    assert store_conn.execute("SELECT count(*) FROM pganalytics.samples WHERE ts > now() - interval '1 day'"
                              ).fetchone()[0] == 180 * 3  # the recent frames are untouched


def test_bad_settings_are_refused(store_conn):
    for name, value in (("retention.raw", "two days"), ("state.ewma_alpha", "1.5"), ("rollup.settle", "-1 minute")):
        with pytest.raises(psycopg.Error):
            store_conn.execute("UPDATE pganalytics.store_settings SET value = %s WHERE name = %s", (value, name))


# -- read_series ---------------------------------------------------------------------------
def read(conn, metric, frm, to, resolution="auto", labels=None):
    return conn.execute("SELECT series_id, labels, ts, value, min, max, n, resolution "
                        "FROM pganalytics.read_series('r1', %s, %s, %s, %s, %s)",
                        (metric, frm, to, resolution, labels)).fetchall()


def test_read_raw_rollup_and_tail_agree(store_conn, loaded):
    frm, to = BASE, BASE + timedelta(minutes=30)
    raw = read(store_conn, "load", frm, to, "raw", '{"cpu": "0"}')
    assert [r[3] for r in raw] == [gauge(i) for i in range(180)]
    one = read(store_conn, "load", frm, to, "1m", '{"cpu": "0"}')
    minutes = expected_minutes([gauge(i) for i in range(180)])
    # 28 stored minutes plus 2 built from the frames not yet rolled up
    assert len(one) == 30
    assert [r[3] for r in one] == pytest.approx([np.mean(minutes[m]) for m in range(30)])
    five = read(store_conn, "load", frm, to, "5m", '{"cpu": "0"}')
    assert [r[6] for r in five] == [30] * 6  # the last one from 1m rows and frames
    both = read(store_conn, "load", frm, to, "1m")
    assert {r[1]["cpu"] for r in both} == {"0", "1"} and len(both) == 60


def test_read_counters_as_rates(store_conn, loaded):
    frm, to = BASE, BASE + timedelta(minutes=20)
    raw = read(store_conn, "xacts_total", frm, to, "raw")
    expect = [(counter(i) - counter(i - 1)) / STEP for i in range(1, 120)]
    assert [r[3] for r in raw] == pytest.approx(expect)
    per_minute = read(store_conn, "xacts_total", frm, to, "1m")
    assert all(2.5 < r[3] < 3.5 for r in per_minute) and len(per_minute) == 19


def test_auto_resolution_by_range(store_conn, loaded):
    assert read(store_conn, "load", BASE, BASE + timedelta(minutes=30))[0][7] == "raw"
    assert read(store_conn, "load", BASE, BASE + timedelta(hours=5))[0][7] == "1m"
    assert read(store_conn, "load", BASE - timedelta(hours=19), BASE + timedelta(hours=5))[0][7] == "5m"


@pytest.mark.parametrize("args, message", [
    (("nope", "load", "auto"), "no instance named 'nope'"),
    (("r1", "nope", "auto"), "has no metric 'nope'"),
    (("r1", "load", "2m"), "resolution '2m' is not one of"),
])
def test_read_refuses_bad_input(store_conn, loaded, args, message):
    instance, metric, resolution = args
    with pytest.raises(psycopg.errors.RaiseException, match=message):
        store_conn.execute("SELECT * FROM pganalytics.read_series(%s, %s, %s, %s, %s)",
                           (instance, metric, BASE, BASE + timedelta(hours=1), resolution))
    with pytest.raises(psycopg.errors.RaiseException, match="must be forward"):
        store_conn.execute("SELECT * FROM pganalytics.read_series('r1', 'load', %s, %s)", (BASE, BASE))


def test_reading_one_series_reads_only_its_rows(store_conn, store_dsn):
    """The per-series key: reading one series' 1m rollups fetches its rows, not the others'."""
    store_conn.execute("SELECT pganalytics.register_instance('wide', 'service=wide')")
    deliver(store_dsn, [SamplesBatch("wide", "host", BASE + timedelta(seconds=STEP * i),
                                     [("w", {"k": str(k)}, "gauge", float(k)) for k in range(300)])
                        for i in range(180)])
    store_conn.execute("SELECT pganalytics.maintain()")
    store_conn.execute("ANALYZE pganalytics.rollups_1m")
    part = store_conn.execute("SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "WHERE i.inhparent = 'pganalytics.rollups_1m'::regclass").fetchall()
    assert len(part) == 1

    def fetched():  # this backend's counters: flush what is pending first
        store_conn.execute("SELECT pg_stat_force_next_flush()")
        store_conn.execute("SELECT 1")  # its end flushes
        return store_conn.execute("SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) "
                                  "FROM pg_stat_user_tables WHERE relid = %s::regclass", (part[0][0],)).fetchone()[0]
    before = fetched()
    rows = store_conn.execute("SELECT * FROM pganalytics.read_series('wide', 'w', %s, %s, '1m', '{\"k\": \"7\"}')",
                              (BASE, BASE + timedelta(minutes=28))).fetchall()
    after = fetched()
    assert len(rows) == 28 and {r[3] for r in rows} == {7.0}
    total = store_conn.execute("SELECT count(*) FROM pganalytics.rollups_1m").fetchone()[0]
    assert total == 300 * 28 and after - before <= 28 + 1  # one series' rows (+ the boundary probe)


def test_read_leaves_nan_and_infinity_out_of_buckets_not_rolled_up_yet(store_conn, store_dsn, loaded):
    """The newest buckets come from raw frames: a NaN or infinite sample is left out of their
    count, sum, min and max, as the rollups leave it out (NaN = NaN in PostgreSQL: no
    self-comparison can find it)."""
    odd = [1.0, math.nan, 3.0, math.inf, 5.0, -math.inf]
    deliver(store_dsn, [batch("r1", 180 + k, extra=v) for k, v in enumerate(odd)])
    rows = read(store_conn, "odd", BASE + timedelta(minutes=30), BASE + timedelta(minutes=31), "1m")
    assert len(rows) == 1
    _, _, _, value, low, high, n, _ = rows[0]
    assert (value, low, high, n) == (3.0, 1.0, 5.0, 3)
