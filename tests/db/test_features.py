"""features() and query_features(): feature vectors of a metric's series and of a query's mean
execution time, checked against numpy on the same data, and their cache in the store (reused
within features.ttl, invalidated by the subject's own new samples only). Samples go in through
the collector's real Sink, query statistics through the real ingest_query_stats()."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from pganalytics.collector.batch import SamplesBatch
from pganalytics.collector.sink import Sink

from .stage import entry, ingest, register

STEP = 10  # seconds between snapshots
N = 300  # 50 minutes of them, the newest just now
WINDOW = timedelta(minutes=5)
COLUMNS = ("series_id, labels, resolution, points, mean, stddev, p95, moving_avg_5m, moving_stddev_5m, "
           "rate_of_change, trend, slope, volatility, computed_at, cached")
FEATURES = ("points", "mean", "stddev", "p95", "moving_avg_5m", "moving_stddev_5m", "rate_of_change",
            "trend", "slope", "volatility")


def values(i: int, rng_value: float) -> dict[str, float]:
    """Per snapshot i: load{cpu=0} climbs, load{cpu=1} is noise about a level, load{cpu=2}
    falls, xacts_total is a counter (~3/s), io (another source) is noise."""
    return {"up": 50.0 + 0.02 * i * STEP + 2 * rng_value, "flat": 40.0 + 3 * rng_value,
            "down": 500.0 - 0.05 * i * STEP + rng_value, "counter": 1000.0 + 3.0 * i * STEP + (i % 4),
            "io": 7.0 + rng_value}


class Data:
    """What was delivered, by series, to compute the expected features from."""

    def __init__(self):
        self.points: dict[str, list[tuple[datetime, float]]] = {}

    def add(self, key: str, ts: datetime, v: float) -> None:
        self.points.setdefault(key, []).append((ts, v))


HOST = {"up": ("load", {"cpu": "0"}, "gauge"), "flat": ("load", {"cpu": "1"}, "gauge"),
        "down": ("load", {"cpu": "2"}, "gauge"), "counter": ("xacts_total", {}, "counter")}


def host_batch(name: str, ts: datetime, vals: dict[str, float], data: Data) -> SamplesBatch:
    for key in HOST:
        data.add(key, ts, vals[key])
    return SamplesBatch(name, "host", ts, [(m, labels, kind, vals[key]) for key, (m, labels, kind) in HOST.items()])


def disk_batch(name: str, ts: datetime, v: float, data: Data) -> SamplesBatch:
    data.add("io", ts, v)
    return SamplesBatch(name, "disk", ts, [("io", {"dev": "sda"}, "gauge", v)])


def deliver(dsn: str, batches) -> int:
    with psycopg.connect(dsn) as conn:
        sink = Sink(conn)
        with sink.transaction():
            return sink.deliver_group(list(batches))


@pytest.fixture
def loaded(store_conn, store_dsn):
    """Instance f1: 50 minutes of host and disk snapshots every 10 s up to now, rolled up."""
    store_conn.execute("SELECT pganalytics.register_instance('f1', 'service=f1')")
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, N)
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    data = Data()
    batches = []
    for i in range(N):
        ts = end - timedelta(seconds=STEP * (N - 1 - i))
        vals = values(i, float(noise[i]))
        batches += [host_batch("f1", ts, vals, data), disk_batch("f1", ts, vals["io"], data)]
    assert deliver(store_dsn, batches) == 5 * N
    store_conn.execute("SELECT pganalytics.maintain()")
    return data


def features(conn, metric, lookback="1 hour", labels=None, instance="f1"):
    rows = conn.execute(f"SELECT {COLUMNS} FROM pganalytics.features(%s, %s, %s::interval, %s::jsonb)",
                        (instance, metric, lookback, labels)).fetchall()
    names = [c.strip() for c in COLUMNS.split(",")]
    return [dict(zip(names, r)) for r in rows]


def by_cpu(rows) -> dict[str, dict]:
    return {r["labels"]["cpu"]: r for r in rows}


def trend_rule(x: np.ndarray, y: np.ndarray, slope: float) -> str | None:
    """The documented rule (analytics/feature_vector.sql), in numpy."""
    n = len(y)
    if n < 3:
        return None
    r2 = np.corrcoef(x, y)[0, 1] ** 2
    change = slope * (x.max() - x.min())
    if (abs(change) > 1e-9 * abs(y.mean()) and r2 * (n - 2) >= 4 * (1 - r2)
            and change ** 2 >= y.var(ddof=1) * (1 - r2)):
        return "up" if slope > 0 else "down"
    return "flat"


def expected(points: list[tuple[datetime, float]], recent: list[tuple[datetime, float]]) -> dict:
    t0 = points[0][0]
    x = np.array([(t - t0).total_seconds() for t, _ in points])
    y = np.array([v for _, v in points])
    rt0 = recent[0][0]
    rx = np.array([(t - rt0).total_seconds() for t, _ in recent])
    ry = np.array([v for _, v in recent])
    slope = np.polyfit(x, y, 1)[0]
    return {"points": len(y), "mean": y.mean(), "stddev": y.std(ddof=1), "p95": np.percentile(y, 95),
            "moving_avg_5m": ry.mean(), "moving_stddev_5m": ry.std(ddof=1),
            "rate_of_change": np.polyfit(rx, ry, 1)[0], "trend": trend_rule(x, y, slope), "slope": slope,
            "volatility": y.std(ddof=1) / abs(y.mean())}


def raw_points(data: Data, key: str, frm: datetime, to: datetime) -> list[tuple[datetime, float]]:
    """The series as read_series() reads it raw: a gauge as is, a counter as per-second rates."""
    pts = data.points[key]
    if key == "counter":
        pts = [(t, (v - pv) / (t - pt).total_seconds()) for (pt, pv), (t, v) in zip(pts, pts[1:])]
    return [(t, v) for t, v in pts if frm <= t < to]


def assert_features(row: dict, want: dict) -> None:
    for name in FEATURES:
        if name in ("points", "trend"):
            assert row[name] == want[name], name
        else:
            assert row[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


def test_features_match_numpy_on_the_same_points(store_conn, loaded):
    rows = features(store_conn, "load") + features(store_conn, "xacts_total")
    assert len(rows) == 4 and {r["resolution"] for r in rows} == {"raw"}
    assert not any(r["cached"] for r in rows)
    keys = {"0": "up", "1": "flat", "2": "down"}
    for row in rows:
        key = keys[row["labels"]["cpu"]] if row["labels"] else "counter"
        at = row["computed_at"]
        want = expected(raw_points(loaded, key, at - timedelta(hours=1), at),
                        raw_points(loaded, key, at - WINDOW, at))
        assert_features(row, want)
    trends = {r["labels"].get("cpu", "counter"): r["trend"] for r in rows}
    assert trends == {"0": "up", "1": "flat", "2": "down", "counter": "flat"}
    assert len(raw_points(loaded, "up", rows[0]["computed_at"] - WINDOW, rows[0]["computed_at"])) >= 25


def test_a_longer_lookback_reads_rollups_and_keeps_raw_moving_features(store_conn, loaded):
    rows = by_cpu(features(store_conn, "load", "3 hours", '{"cpu": "0"}'))
    row = rows["0"]
    assert row["resolution"] == "1m" and not row["cached"]
    at = row["computed_at"]
    minutes: dict[datetime, list[float]] = {}
    for t, v in loaded.points["up"]:
        minutes.setdefault(t.replace(second=0), []).append(v)
    per_minute = sorted((t, float(np.mean(vs))) for t, vs in minutes.items() if t < at)
    want = expected(per_minute, raw_points(loaded, "up", at - WINDOW, at))
    assert_features(row, want)
    assert row["points"] in (50, 51)  # minutes, not the 300 raw points
    assert row["moving_stddev_5m"] is not None  # from raw points: a 1m read has ~5 in 5 minutes


def test_a_second_call_within_the_ttl_is_served_from_the_cache(store_conn, loaded):
    first = by_cpu(features(store_conn, "load"))
    second = by_cpu(features(store_conn, "load"))
    assert all(not r["cached"] for r in first.values()) and all(r["cached"] for r in second.values())
    for cpu, row in second.items():
        assert row["computed_at"] == first[cpu]["computed_at"]
        assert {k: row[k] for k in FEATURES} == {k: first[cpu][k] for k in FEATURES}
    stored = store_conn.execute("SELECT count(*) FROM pganalytics.feature_cache WHERE kind = 'series'").fetchone()[0]
    assert stored == 3
    # another lookback is another vector
    other = by_cpu(features(store_conn, "load", "30 minutes"))
    assert not any(r["cached"] for r in other.values())
    assert other["0"]["points"] < first["0"]["points"]


def test_the_cache_is_per_series(store_conn, loaded):
    one = features(store_conn, "load", labels='{"cpu": "0"}')
    assert [r["labels"] for r in one] == [{"cpu": "0"}] and not one[0]["cached"]
    rows = by_cpu(features(store_conn, "load"))
    assert rows["0"]["cached"] and rows["0"]["computed_at"] == one[0]["computed_at"]
    assert not rows["1"]["cached"] and not rows["2"]["cached"]


def age(conn, by: str) -> None:
    conn.execute("UPDATE pganalytics.feature_cache SET computed_at = computed_at - %s::interval", (by,))


def test_ttl_expiry_recomputes(store_conn, loaded):
    first = by_cpu(features(store_conn, "load"))
    age(store_conn, "4 minutes 50 seconds")  # still inside the 5 minutes
    inside = by_cpu(features(store_conn, "load"))
    assert all(r["cached"] for r in inside.values())
    assert inside["0"]["computed_at"] == first["0"]["computed_at"] - timedelta(minutes=4, seconds=50)
    age(store_conn, "10 seconds")  # now 5 minutes old
    after = by_cpu(features(store_conn, "load"))
    assert not any(r["cached"] for r in after.values())
    assert after["0"]["computed_at"] > first["0"]["computed_at"]
    assert all(r["cached"] for r in by_cpu(features(store_conn, "load")).values())  # cached again


def test_ttl_is_a_store_setting(store_conn, loaded):
    features(store_conn, "load")
    store_conn.execute("UPDATE pganalytics.store_settings SET value = '1 hour' WHERE name = 'features.ttl'")
    age(store_conn, "30 minutes")
    assert all(r["cached"] for r in features(store_conn, "load"))
    store_conn.execute("UPDATE pganalytics.store_settings SET value = '0' WHERE name = 'features.ttl'")
    assert not any(r["cached"] for r in features(store_conn, "load"))
    assert not any(r["cached"] for r in features(store_conn, "load"))
    with pytest.raises(psycopg.Error):
        store_conn.execute("UPDATE pganalytics.store_settings SET value = '-1 minute' WHERE name = 'features.ttl'")


def test_new_samples_of_the_series_invalidate_its_entry(store_conn, store_dsn, loaded):
    first = by_cpu(features(store_conn, "load"))
    assert all(r["cached"] for r in by_cpu(features(store_conn, "load")).values())
    ts = datetime.now(timezone.utc) - timedelta(milliseconds=100)
    newest = loaded.points["up"][-1][0]
    assert ts > newest
    vals = {"up": 900.0, "flat": 41.0, "down": 1.0, "counter": loaded.points["counter"][-1][1] + 30}
    assert deliver(store_dsn, [host_batch("f1", ts, vals, loaded)]) == 4
    again = by_cpu(features(store_conn, "load"))
    assert not any(r["cached"] for r in again.values())
    row = again["0"]
    assert row["computed_at"] > first["0"]["computed_at"] and row["points"] == first["0"]["points"] + 1
    at = row["computed_at"]
    want = expected(raw_points(loaded, "up", at - timedelta(hours=1), at), raw_points(loaded, "up", at - WINDOW, at))
    assert_features(row, want)
    assert row["moving_avg_5m"] > first["0"]["moving_avg_5m"] + 20  # the 900 is in it
    assert all(r["cached"] for r in by_cpu(features(store_conn, "load")).values())


def test_other_series_samples_do_not_invalidate(store_conn, store_dsn, loaded):
    load = by_cpu(features(store_conn, "load"))
    io = features(store_conn, "io")
    ts = datetime.now(timezone.utc) - timedelta(milliseconds=100)
    assert deliver(store_dsn, [disk_batch("f1", ts, 99.0, loaded)]) == 1  # another source: another layout
    still = by_cpu(features(store_conn, "load"))
    assert all(r["cached"] for r in still.values())
    assert still["0"]["computed_at"] == load["0"]["computed_at"]
    fresh = features(store_conn, "io")
    assert not fresh[0]["cached"] and fresh[0]["points"] == io[0]["points"] + 1
    # and another instance's samples neither
    store_conn.execute("SELECT pganalytics.register_instance('f2', 'service=f2')")
    assert deliver(store_dsn, [host_batch("f2", ts, values(0, 0.0), Data())]) == 4
    assert all(r["cached"] for r in features(store_conn, "load"))


def test_expired_rows_of_other_lookbacks_are_removed(store_conn, loaded):
    features(store_conn, "load", "30 minutes")
    age(store_conn, "6 minutes")
    features(store_conn, "load", "1 hour")
    lookbacks = store_conn.execute("SELECT DISTINCT lookback FROM pganalytics.feature_cache").fetchall()
    assert lookbacks == [(timedelta(hours=1),)]


def test_a_series_without_points_in_the_lookback_has_a_row(store_conn, store_dsn, loaded):
    old = datetime.now(timezone.utc) - timedelta(hours=3)
    assert deliver(store_dsn, [SamplesBatch("f1", "old_src", old, [("gone", {}, "gauge", 1.0)])]) == 1
    rows = features(store_conn, "gone")
    assert len(rows) == 1 and rows[0]["points"] == 0 and rows[0]["mean"] is None
    assert rows[0]["trend"] is None and rows[0]["resolution"] is None
    assert features(store_conn, "gone")[0]["cached"]
    assert features(store_conn, "load", labels='{"cpu": "9"}') == []  # no series has those labels


@pytest.mark.parametrize("args, message", [
    ((None, "load", "1 hour", None), "features: instance, metric and lookback must not be null"),
    (("f1", None, "1 hour", None), "features: instance, metric and lookback must not be null"),
    (("f1", "load", None, None), "features: instance, metric and lookback must not be null"),
    (("nope", "load", "1 hour", None), "features: no instance named 'nope'"),
    (("f1", "nope", "1 hour", None), "features: instance f1 has no metric 'nope'"),
    (("f1", "load", "0", None), "features: lookback must be more than 0"),
    (("f1", "load", "-1 hour", None), "features: lookback must be more than 0"),
    (("f1", "load", "401 days", None), "at most 400 days"),
    (("f1", "load", "1 hour", "[1]"), "features: labels must be a JSON object, got array"),
])
def test_features_refuse_bad_input(store_conn, loaded, args, message):
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute("SELECT * FROM pganalytics.features(%s, %s, %s::interval, %s::jsonb)", args)


def test_admins_call_them_but_cannot_write_the_cache(store_conn, store_dsn, loaded):
    name = f"pga_admin_{uuid.uuid4().hex[:8]}"
    store_conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'x' IN ROLE pganalytics_admin")
    try:
        params = psycopg.conninfo.conninfo_to_dict(store_dsn)
        params.update(user=name, password="x")
        with psycopg.connect(psycopg.conninfo.make_conninfo("", **params), autocommit=True) as admin:
            assert len(features(admin, "load")) == 3
            assert admin.execute("SELECT count(*) FROM pganalytics.feature_cache").fetchone()[0] == 3
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                admin.execute("UPDATE pganalytics.feature_cache SET mean = 0")
        owner = store_conn.execute("SELECT proowner::regrole::text, prosecdef, provolatile FROM pg_proc "
                                   "WHERE oid = 'pganalytics.features(text, text, interval, jsonb)'::regprocedure"
                                   ).fetchone()
        assert owner == ("pganalytics_owner", True, "v")
    finally:
        store_conn.execute(f"DROP ROLE {name}")


# -- query_features -------------------------------------------------------------------------
MEANS = [2.0 + 0.01 * k + (0.5 if k % 7 == 0 else 0.0) for k in range(60)]  # ms per call, per interval


@pytest.fixture
def queries(store_conn):
    """Instance q1: 60 one-minute intervals of query 42 (in two databases) and 43, up to now."""
    iid = register(store_conn, "q1")
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    start = end - timedelta(minutes=60)
    state = {"c1": 0, "t1": 0.0, "c2": 0, "t2": 0.0, "c3": 0, "t3": 0.0}
    points: list[tuple[datetime, float]] = []

    def snapshot(at: datetime, mean: float | None, other: bool = True) -> None:
        if mean is not None:  # db 1 runs 10 calls at mean, db 2 30 calls at mean + 1
            state["c1"] += 10
            state["t1"] += 10 * mean
            state["c2"] += 30
            state["t2"] += 30 * (mean + 1)
            points.append((at, (10 * mean + 30 * (mean + 1)) / 40))
        if other:
            state["c3"] += 5
            state["t3"] += 5 * 9.0
        ingest(store_conn, iid, at, [entry(42, state["c1"], state["t1"], dbid=1),
                                     entry(42, state["c2"], state["t2"], dbid=2),
                                     entry(43, state["c3"], state["t3"], dbid=1)])
    snapshot(start, None)  # the baseline: no interval before it
    for k in range(60):
        snapshot(start + timedelta(minutes=k + 1), MEANS[k])
    return {"iid": iid, "points": points, "snapshot": snapshot}


QCOLUMNS = ("queryid, points, mean, stddev, p95, moving_avg_5m, moving_stddev_5m, rate_of_change, trend, "
            "slope, volatility, computed_at, cached")


def query_features(conn, queryid=42, lookback="1 hour"):
    row = conn.execute(f"SELECT {QCOLUMNS} FROM pganalytics.query_features('q1', %s, %s::interval)",
                       (queryid, lookback)).fetchone()
    return dict(zip([c.strip() for c in QCOLUMNS.split(",")], row))


def query_expected(points, at: datetime, lookback: timedelta) -> dict:
    return expected([(t, v) for t, v in points if at - lookback < t <= at],
                    [(t, v) for t, v in points if at - WINDOW < t <= at])


def test_query_features_match_numpy(store_conn, queries):
    row = query_features(store_conn)
    assert row["queryid"] == 42 and not row["cached"]
    want = query_expected(queries["points"], row["computed_at"], timedelta(hours=1))
    assert want["points"] >= 59
    assert_features(row, want)
    assert row["trend"] == "up" and row["moving_avg_5m"] == pytest.approx(np.mean(
        [v for t, v in queries["points"] if t > row["computed_at"] - WINDOW]))
    short = query_features(store_conn, lookback="20 minutes")
    assert_features(short, query_expected(queries["points"], short["computed_at"], timedelta(minutes=20)))


def test_query_cache_hit_ttl_and_invalidation(store_conn, queries):
    first = query_features(store_conn)
    second = query_features(store_conn)
    assert second["cached"] and second["computed_at"] == first["computed_at"] and second["mean"] == first["mean"]
    # a snapshot in which only query 43 ran adds no delta of 42: still cached
    now = datetime.now(timezone.utc) - timedelta(milliseconds=200)
    queries["snapshot"](now, None)
    assert query_features(store_conn)["cached"]
    assert not query_features(store_conn, 43)["cached"]
    # one in which 42 ran: recomputed, with the new point
    queries["snapshot"](datetime.now(timezone.utc) - timedelta(milliseconds=100), 50.0, other=False)
    third = query_features(store_conn)
    assert not third["cached"] and third["points"] == first["points"] + 1
    assert_features(third, query_expected(queries["points"], third["computed_at"], timedelta(hours=1)))
    assert query_features(store_conn, 43)["cached"]  # 43 did not run in that one
    # the TTL
    assert query_features(store_conn)["cached"]
    age(store_conn, "5 minutes")
    assert not query_features(store_conn)["cached"]


@pytest.mark.parametrize("args, message", [
    ((None, 42, "1 hour"), "query_features: instance, queryid and lookback must not be null"),
    (("q1", None, "1 hour"), "query_features: instance, queryid and lookback must not be null"),
    (("nope", 42, "1 hour"), "query_features: no instance named 'nope'"),
    (("q1", 4242, "1 hour"), "query_features: instance q1 has no query with queryid 4242"),
    (("q1", 42, "0"), "query_features: lookback must be more than 0"),
    (("q1", 42, "500 days"), "query_features: lookback must be more than 0 and at most 400 days"),
])
def test_query_features_refuse_bad_input(store_conn, queries, args, message):
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute("SELECT * FROM pganalytics.query_features(%s, %s, %s::interval)", args)


def test_feature_vector_edges(store_conn):
    """Rounding of a constant series is no trend, fewer than 3 points no trend at all, NaN and
    infinity are left out, an empty series is all NULL but its count."""
    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    ts = [t0 + timedelta(seconds=10 * i) for i in range(100)]

    def vector(vals):
        return store_conn.execute("SELECT points, mean, stddev, trend, slope, volatility "
                                  "FROM pganalytics.feature_vector(%s, %s::float8[], %s, %s::float8[])",
                                  (ts[:len(vals)], vals, ts[:len(vals)], vals)).fetchone()
    points, mean, _, trend, _, volatility = vector([0.1] * 100)
    assert (points, trend) == (100, "flat") and mean == pytest.approx(0.1) and volatility < 1e-12
    assert vector([1.0, 2.0])[3] is None and vector([1.0, 2.0, 3.0])[3] == "up"
    assert vector([3.0, float("nan"), 2.0, float("inf"), 1.0])[:4] == (3, 2.0, 1.0, "down")
    assert vector([]) == (0, None, None, None, None, None)
