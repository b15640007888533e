"""pganalytics.forecast_series(): the forecaster of plpython/forecast.py, callable from SQL."""
import datetime as dt
import json

import numpy as np
import psycopg
import pytest

from pganalytics.plpython import forecast

T0 = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
H = dt.timedelta(hours=1)


def series(n=14 * 24, seed=1):
    rng = np.random.default_rng(seed)
    h = np.arange(n)
    values = list(200 + 0.05 * h + 30 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 3, n))
    return [T0 + i * H for i in range(n)], values


def run(conn, ts, values, horizon, options=None):
    return conn.execute("SELECT ts, yhat, lo, hi FROM pganalytics.forecast_series(%s, %s, %s, %s)",
                        (ts, values, horizon, json.dumps(options or {}))).fetchall()


def test_sql_returns_what_the_module_returns(store_conn):
    ts, values = series()
    for options in ({}, {"level": 0.8, "season": "day"}, {"model": "naive"}):
        rows = run(store_conn, ts, values, 48, options)
        times, yhat, lo, hi = forecast.forecast([t.timestamp() for t in ts], values, 48, options)
        assert [r[0] for r in rows] == [ts[-1] + k * H for k in range(1, 49)]
        assert [r[0].timestamp() for r in rows] == times
        # the server's numpy may not be the client's: last-bit differences only
        assert [r[1] for r in rows] == pytest.approx(yhat, rel=1e-9)
        assert [r[2] for r in rows] == pytest.approx(lo, rel=1e-9)
        assert [r[3] for r in rows] == pytest.approx(hi, rel=1e-9)


def test_the_forecast_is_near_the_truth_and_inside_its_interval(store_conn):
    ts, values = series(n=15 * 24, seed=2)
    rows = run(store_conn, ts[:-24], values[:-24], 24)
    actual = np.asarray(values[-24:])
    yhat = np.array([r[1] for r in rows])
    assert np.sqrt(np.mean((yhat - actual) ** 2)) < 6.0  # noise sd 3
    inside = np.mean([r[2] <= a <= r[3] for r, a in zip(rows, actual)])
    assert inside >= 0.8


def test_online_the_forecast_uses_only_the_history_given(store_conn):
    ts, values = series(seed=3)
    cut = 10 * 24
    a = run(store_conn, ts[:cut], values[:cut], 24)
    later = values[:cut] + [v + 500 for v in values[cut:]]
    assert run(store_conn, ts[:cut], later[:cut], 24) == a
    assert a[0][0] == ts[cut - 1] + H


def test_constant_series_gives_zero_width_intervals(store_conn):
    ts = [T0 + i * H for i in range(50)]
    rows = run(store_conn, ts, [3.0] * 50, 5)
    assert [r[1:] for r in rows] == [(3.0, 3.0, 3.0)] * 5


@pytest.mark.parametrize("ts, values, horizon, options, message", [
    ([T0 + i * H for i in range(12)], [1.0] * 11, 5, {}, "12 timestamps but 11 values"),
    ([T0 + i * H for i in range(11)] + [None], [1.0] * 12, 5, {}, "element 12 is NULL"),
    ([T0 + i * H for i in range(12)], [1.0] * 11 + [None], 5, {}, "element 12 is NULL"),
    ([T0 + i * H for i in range(12)], [1.0] * 11 + [float("nan")], 5, {}, "value 12 is nan"),
    ([T0 + i * H for i in range(12)], [1.0] * 11 + [float("inf")], 5, {}, "value 12 is inf"),
    ([T0 + i * H for i in range(11)] + [T0 + 10 * H], [1.0] * 12, 5, {}, "timestamp 12 duplicates timestamp 11"),
    ([T0 + i * H for i in range(11)] + [T0], [1.0] * 12, 5, {}, "timestamp 12 is earlier than"),
    ([T0 + i * H for i in range(5)], [1.0] * 5, 5, {}, "5 points of history"),
    ([T0 + i * H for i in range(12)], [1.0] * 12, 0, {}, "horizon must be a positive number"),
    ([T0 + i * H for i in range(12)], [1.0] * 12, 1000, {}, "horizon 1000 is too far"),
    ([T0 + i * H for i in range(12)] + [T0 + 40 * H], [1.0] * 13, 5, {}, "gap of .* longer than max_gap"),
    ([T0 + i * H for i in range(30)], [1.0] * 30, 5, {"season": "day"}, "season 'day' needs at least two days"),
    ([T0 + i * H for i in range(12)], [1.0] * 12, 5, {"alpha": 0.3}, "unknown option"),
    ([T0 + i * H for i in range(12)], [1.0] * 12, 5, {"level": 2}, "level must be a number in"),
])
def test_bad_input_gets_a_clear_error(store_conn, ts, values, horizon, options, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"forecast_series: .*{message}"):
        run(store_conn, ts, values, horizon, options)


def test_null_arguments(store_conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="timestamps and values must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.forecast_series(NULL, ARRAY[1.0]::float8[], 3)").fetchall()
    ts, values = series(n=20)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="horizon must not be NULL"):
        run(store_conn, ts, values, None)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="options must be a JSON object"):
        store_conn.execute("SELECT * FROM pganalytics.forecast_series(%s, %s, 3, '[1]')", (ts, values)).fetchall()
    # the default options
    assert len(store_conn.execute("SELECT * FROM pganalytics.forecast_series(%s, %s, 3)", (ts, values)).fetchall()) == 3


def test_only_the_admin_role_may_call_it(store_conn):
    for signature in ("pganalytics.forecast_series(timestamptz[], float8[], int, jsonb)",
                      "pganalytics.forecast_values(float8[], float8[], int, jsonb)"):
        granted = store_conn.execute(
            "SELECT array_agg(DISTINCT r.rolname ORDER BY r.rolname) FROM pg_roles r "
            "WHERE has_function_privilege(r.oid, %s, 'EXECUTE') "
            "AND NOT r.rolsuper AND r.rolname LIKE 'pganalytics%%'", (signature,)).fetchone()[0]
        assert "pganalytics_admin" in granted
        assert "pganalytics_collector" not in granted and "pganalytics_gateway" not in granted
