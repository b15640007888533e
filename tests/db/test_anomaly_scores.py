"""pganalytics.anomaly_scores(): the detector of plpython/anomaly.py, callable from SQL."""
import datetime as dt
import json

import numpy as np
import psycopg
import pytest

from pganalytics.plpython import anomaly

T0 = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)


def series(n=600, seed=1):
    rng = np.random.default_rng(seed)
    values = list(rng.normal(100, 5, n))
    values[450] += 80
    return [T0 + dt.timedelta(minutes=i) for i in range(n)], values


def scores(conn, ts, values, options=None):
    return conn.execute("SELECT ts, value, expected, score, is_anomaly FROM pganalytics.anomaly_scores(%s, %s, %s)",
                        (ts, values, json.dumps(options or {}))).fetchall()


def test_sql_returns_what_the_module_returns_point_for_point(store_conn):
    ts, values = series()
    rows = scores(store_conn, ts, values)
    expected, score, flags = anomaly.score([t.timestamp() for t in ts], values)
    assert [r[0] for r in rows] == ts and [r[1] for r in rows] == values
    # The server's numpy may not be the client's (Debian's 1.24 here): last-bit differences in
    # log/exp are allowed, nothing more.
    assert [r[2] for r in rows] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert [r[3] for r in rows] == pytest.approx(score, rel=1e-9, abs=1e-12)
    assert [r[4] for r in rows] == flags
    assert flags[450] and sum(flags) == 1


def test_options_reach_the_detector(store_conn):
    ts, values = series()
    rows = scores(store_conn, ts, values, {"warmup_points": 500})
    assert not any(r[4] for r in rows)  # the spike at 450 is inside the longer warm-up
    rows = scores(store_conn, ts, values, {"threshold": 0.99})
    assert not any(r[4] for r in rows)


def test_online_truncating_the_series_keeps_every_earlier_score(store_conn):
    ts, values = series(seed=2)
    full = scores(store_conn, ts, values)
    for cut in (120, 451, 599):
        assert scores(store_conn, ts[:cut], values[:cut]) == full[:cut]


@pytest.mark.parametrize("ts, values, options, message", [
    ([T0, T0 + dt.timedelta(minutes=1)], [1.0], {}, "2 timestamps but 1 values"),
    ([T0, None], [1.0, 2.0], {}, "element 2 is NULL"),
    ([T0, T0 + dt.timedelta(minutes=1)], [1.0, None], {}, "element 2 is NULL"),
    ([T0, T0 + dt.timedelta(minutes=1)], [1.0, float("nan")], {}, "value 2 is nan"),
    ([T0, T0 + dt.timedelta(minutes=1)], [1.0, float("inf")], {}, "value 2 is inf"),
    ([T0, T0], [1.0, 2.0], {}, "timestamp 2 duplicates timestamp 1"),
    ([T0, T0 - dt.timedelta(minutes=1)], [1.0, 2.0], {}, "timestamp 2 is earlier than"),
    ([T0], [1.0], {"alpha": 2}, "unknown option"),
    ([T0], [1.0], {"threshold": 7}, "threshold must be a number in"),
])
def test_bad_input_gets_a_clear_error(store_conn, ts, values, options, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"anomaly_scores: .*{message}"):
        scores(store_conn, ts, values, options)


def test_null_arrays_and_options(store_conn):
    with pytest.raises(psycopg.errors.Error, match="anomaly_scores: timestamps and values must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.anomaly_scores(NULL, ARRAY[1.0]::float8[])").fetchall()
    with pytest.raises(psycopg.errors.Error, match="options must be a JSON object"):
        store_conn.execute("SELECT * FROM pganalytics.anomaly_scores(ARRAY[now()], ARRAY[1.0]::float8[], "
                           "'[1]')").fetchall()
    rows = store_conn.execute("SELECT * FROM pganalytics.anomaly_scores('{}'::timestamptz[], '{}'::float8[])").fetchall()
    assert rows == []


def test_only_the_admin_role_may_call_it(store_conn):
    granted = store_conn.execute(
        "SELECT array_agg(DISTINCT r.rolname ORDER BY r.rolname) FROM pg_roles r "
        "WHERE has_function_privilege(r.oid, 'pganalytics.anomaly_scores(timestamptz[], float8[], jsonb)', 'EXECUTE') "
        "AND NOT r.rolsuper AND r.rolname LIKE 'pganalytics%'").fetchone()[0]
    assert "pganalytics_admin" in granted and "pganalytics_collector" not in granted
