"""pganalytics.lagged_correlation() and correlation_matrix_values(): plpython/correlation.py from SQL."""
import datetime as dt
import json
import math

import numpy as np
import psycopg
import pytest

from pganalytics.plpython import correlation

T0 = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
S = dt.timedelta(seconds=1)
M = dt.timedelta(minutes=1)


def ar1(n, phi, rng, sd=1.0):
    e = rng.normal(0, sd, n)
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = phi * z[t - 1] + e[t]
    return z


def pair(n=900, lag=25, seed=1, noise=0.7):
    """x leads y by `lag` seconds (negative: y leads), AR(1) x, trends on both."""
    rng = np.random.default_rng(seed)
    pad = abs(lag) + 1
    base = ar1(n + 2 * pad, 0.7, rng)
    t = np.arange(n)
    x = base[pad:pad + n] + 0.01 * t
    y = 2 * base[pad - lag:pad - lag + n] + rng.normal(0, noise, n) + 5 - 0.02 * t
    return [T0 + i * S for i in range(n)], list(x), list(y)


def run(conn, ts, x, y, max_lag="5 min", options=None):
    return conn.execute("SELECT lag, r FROM pganalytics.lagged_correlation(%s, %s, %s, %s::interval, %s)",
                        (ts, x, y, max_lag, json.dumps(options or {}))).fetchall()


def test_sql_returns_what_the_module_returns(store_conn):
    ts, x, y = pair()
    epoch = [t.timestamp() for t in ts]
    for max_lag, seconds, options in (("5 min", 300, {}), ("40 s", 40, {"detrend": "none"}),
                                      ("1 min", 60, {"detrend": "difference", "min_pairs": 850}),
                                      ("2 min", 120, {"step": "2 s", "detrend": "linear"})):
        rows = run(store_conn, ts, x, y, max_lag, options)
        lags, rs, info = correlation.lagged_correlation(epoch, x, y, seconds, options)
        assert [r[0] for r in rows] == [dt.timedelta(seconds=k) for k in lags]
        assert rows[0][0] == -dt.timedelta(seconds=seconds) and rows[-1][0] == dt.timedelta(seconds=seconds)
        assert [r[1] is None for r in rows] == [v is None for v in rs]
        # the server's numpy may not be the client's: last-bit differences only
        assert [r[1] for r in rows if r[1] is not None] == pytest.approx([v for v in rs if v is not None], abs=1e-9)
    # min_pairs 850 of 900 points: lags beyond 50 s have no r
    rows = run(store_conn, ts, x, y, "1 min", {"detrend": "difference", "min_pairs": 850})
    assert all((r is None) == (abs(lag.total_seconds()) > 49) for lag, r in rows)


@pytest.mark.parametrize("lag", [-60, 0, 25, 240])
def test_the_known_lead_is_the_best_lag(store_conn, lag):
    ts, x, y = pair(lag=lag, seed=100 + lag)
    rows = run(store_conn, ts, x, y)
    best = max(rows, key=lambda row: abs(row[1]) if row[1] is not None else -1)
    assert abs(best[0].total_seconds() - lag) <= 1
    assert best[1] > 0.8
    assert len(rows) == 601 and rows[300][0] == dt.timedelta(0)


def test_a_gap_at_one_minute_resolution(store_conn):
    ts, x, y = pair(n=400, lag=3, seed=5, noise=0.3)
    minute = [T0 + i * M for i in range(400)]
    keep = [i for i in range(400) if not 100 <= i < 160]
    rows = run(store_conn, [minute[i] for i in keep], [x[i] for i in keep], [y[i] for i in keep], "10 min")
    assert len(rows) == 21
    best = max(rows, key=lambda row: abs(row[1]))
    assert best[0] == 3 * M


def test_independent_random_walks_are_not_correlated_once_prepared(store_conn):
    ts = [T0 + i * M for i in range(1440)]
    raw, prepared = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        a, b = list(np.cumsum(rng.normal(size=1440))), list(np.cumsum(rng.normal(size=1440)))
        raw.append(abs(run(store_conn, ts, a, b, "0 s", {"detrend": "none"})[0][1]))
        prepared.append(max(abs(r) for _, r in run(store_conn, ts, a, b, "5 min")))
    assert sum(r > 0.3 for r in raw) >= 4, "as given, unrelated walks often look related"
    assert max(prepared) < 0.12


N = 50
TS = [T0 + i * S for i in range(N)]
LINE = [float(i) for i in range(N)]
WAVE = [math.sin(i) for i in range(N)]


@pytest.mark.parametrize("ts, x, y, max_lag, options, message", [
    (TS, [1.0] * N, WAVE, "5 s", {}, "x is constant over the window"),
    (TS, WAVE, [2.0] * N, "5 s", {}, "y is constant over the window"),
    (TS, LINE, WAVE, "5 s", {}, "x is a straight line over the window"),
    (TS[:20], WAVE[:20], WAVE[:20], "5 s", {}, "20 points: a correlation needs at least 30"),
    (TS, WAVE[:-1], WAVE, "5 s", {}, "50 timestamps but 49 values of x"),
    (TS, WAVE[:-1] + [None], WAVE, "5 s", {}, "x element 50 is NULL"),
    (TS, WAVE, WAVE[:-1] + [float("nan")], "5 s", {}, "y value 50 is nan"),
    (TS, WAVE, WAVE[:-1] + [float("inf")], "5 s", {}, "y value 50 is inf"),
    (TS[:-1] + [TS[-2]], WAVE, WAVE, "5 s", {}, "timestamp 50 duplicates timestamp 49"),
    (TS[:-1] + [TS[0]], WAVE, WAVE, "5 s", {}, "timestamp 50 is earlier than timestamp 49"),
    (TS[:-1] + [None], WAVE, WAVE, "5 s", {}, "timestamp 50 is NULL"),
    (TS, WAVE, WAVE, "-5 s", {}, "max_lag must be a finite duration >= 0"),
    (TS, WAVE, WAVE, "5 s", {"lag": 3}, "unknown option.s. lag"),
    (TS, WAVE, WAVE, "5 s", {"detrend": "loess"}, "detrend must be one of"),
    (TS, WAVE, WAVE, "5 s", {"step": "fortnight"}, "not an interval"),
    (TS, WAVE, WAVE, "5 s", {"step": 0}, "step must be a positive duration"),
    (TS, WAVE, WAVE, "5 s", {"min_pairs": 1.5}, "min_pairs must be an integer"),
])
def test_bad_input_gets_a_clear_error(store_conn, ts, x, y, max_lag, options, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"lagged_correlation: .*{message}"):
        run(store_conn, ts, x, y, max_lag, options)


def test_null_arguments_and_defaults(store_conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="timestamps must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.lagged_correlation(NULL, %s, %s)", (WAVE, WAVE)).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="x must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.lagged_correlation(%s, NULL, %s)", (TS, WAVE)).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="max_lag must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.lagged_correlation(%s, %s, %s, NULL)", (TS, WAVE, WAVE)).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="options must be a JSON object"):
        store_conn.execute("SELECT * FROM pganalytics.lagged_correlation(%s, %s, %s, '1 s', '[1]')",
                           (TS, WAVE, WAVE)).fetchall()
    # the defaults: 5 minutes of lags at the 1 s grid, "auto"
    ts, x, y = pair(n=400)
    rows = store_conn.execute("SELECT lag, r FROM pganalytics.lagged_correlation(%s, %s, %s)", (ts, x, y)).fetchall()
    assert len(rows) == 601 and rows == run(store_conn, ts, x, y, "5 min", {})


def matrix_input(n=300, seed=2):
    rng = np.random.default_rng(seed)
    base = ar1(n + 10, 0.6, rng)
    locks = base[10:]
    latency = 3 * base[7:7 + n] + rng.normal(0, 0.5, n) + 0.02 * np.arange(n)
    cpu = ar1(n, 0.5, rng)
    names = ["lock_waits", "latency", "cpu", "connections"]
    cols = [list(locks), list(latency), list(cpu), [20.0] * n]
    cols[2][40:60] = [None] * 20
    return names, [T0 + i * M for i in range(n)], cols


def matrix_rows(conn, names, ts, cols, options=None):
    return conn.execute(
        "SELECT x, y, r, lag, r_at_lag, leader, prepared, significant, insight "
        "FROM pganalytics.correlation_matrix_values(%s, %s, %s::float8[], %s)",
        (names, ts, cols, json.dumps(options or {}))).fetchall()


def test_matrix_from_sql_is_the_modules(store_conn):
    names, ts, cols = matrix_input()
    for options in ({}, {"threshold": 0.3, "max_lag": "10 min", "detrend": "linear"}):
        rows = matrix_rows(store_conn, names, ts, cols, options)
        expected = correlation.correlation_matrix(names, [t.timestamp() for t in ts], cols, options)
        assert len(rows) == 6
        for row, want in zip(rows, expected):
            assert row[:2] == (want["x"], want["y"])
            assert (row[2] is None) == (want["r"] is None)
            if want["r"] is not None:
                assert row[2] == pytest.approx(want["r"], abs=1e-9)
                assert row[3] == dt.timedelta(seconds=want["lag"])
                assert row[4] == pytest.approx(want["r_at_lag"], abs=1e-9)
            assert row[5:] == (want["leader"], want["prepared"], want["significant"], want["insight"])
    rows = {(r[0], r[1]): r for r in matrix_rows(store_conn, names, ts, cols)}
    lead = rows[("lock_waits", "latency")]
    assert lead[3] == 3 * M and lead[5] == "lock_waits" and lead[7] is True
    assert lead[8].startswith("lock_waits leads latency by 3 min, r = 0.9")
    assert rows[("cpu", "connections")][2] is None
    assert rows[("cpu", "connections")][8] == "cannot correlate: connections is constant over the window"
    assert rows[("lock_waits", "cpu")][8] is None


def test_matrix_columns_built_with_array_agg(store_conn):
    names, ts, cols = matrix_input()
    store_conn.execute("CREATE TEMP TABLE m (name text, pos int, ts timestamptz, v float8)")
    with store_conn.cursor().copy("COPY m FROM STDIN") as copy:
        for pos, (name, col) in enumerate(zip(names, cols)):
            for t, v in zip(ts, col):
                copy.write_row((name, pos, t, v))
    rows = store_conn.execute("""
        WITH c AS (SELECT name, pos, array_agg(v ORDER BY ts) AS col FROM m GROUP BY name, pos)
        SELECT x, y, r FROM pganalytics.correlation_matrix_values(
            (SELECT array_agg(name ORDER BY pos) FROM c),
            (SELECT array_agg(DISTINCT ts ORDER BY ts) FROM m),
            (SELECT array_agg(col ORDER BY pos) FROM c))""").fetchall()
    direct = [r[:3] for r in matrix_rows(store_conn, names, ts, cols)]
    assert rows == direct


@pytest.mark.parametrize("change, message", [
    (lambda n, t, c: (n[:1], t, c[:1]), "a matrix needs at least two"),
    (lambda n, t, c: (["a", "a", "b", "c"], t, c), "metric name.s. a appear more than once"),
    (lambda n, t, c: (n[:3], t, c), "3 names but 4 columns"),
    (lambda n, t, c: (n, t[:-1] + [t[-1] + dt.timedelta(seconds=20)], c), "the grid is not regular"),
    (lambda n, t, c: (n, t[:-1] + [t[-3]], c), "grid timestamp 300 is earlier than grid timestamp 299"),
    (lambda n, t, c: (n, t[:-1] + [None], c), "grid timestamp 300 is NULL"),
    (lambda n, t, c: (n, t[:-1] + [dt.datetime.max.replace(tzinfo=dt.timezone.utc)], c), "span 4193478720 steps"),
    (lambda n, t, c: (n, t, [col[:-1] + [float("nan")] for col in c]), "column lock_waits value 300 is nan"),
    (lambda n, t, c: (n, t[:20], [col[:20] for col in c]), "20 grid points"),
])
def test_matrix_bad_input(store_conn, change, message):
    names, ts, cols = change(*matrix_input())
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"correlation_matrix: .*{message}"):
        matrix_rows(store_conn, names, ts, cols)


def test_matrix_null_and_odd_arguments(store_conn):
    names, ts, cols = matrix_input()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="grid timestamps must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.correlation_matrix_values(%s, NULL, %s::float8[])",
                           (names, cols)).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="names and columns must not be NULL"):
        store_conn.execute("SELECT * FROM pganalytics.correlation_matrix_values(NULL, %s, %s::float8[])",
                           (ts, cols)).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="columns must be a two-dimensional array"):
        store_conn.execute("SELECT * FROM pganalytics.correlation_matrix_values(%s, %s, %s::float8[])",
                           (names, ts, cols[0])).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="grid timestamp 300 .infinity. is not a finite time"):
        store_conn.execute("SELECT * FROM pganalytics.correlation_matrix_values(%s, %s::timestamptz[] || 'infinity'::timestamptz, %s::float8[])",
                           (names, ts[:-1], cols)).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown option.s. window"):
        matrix_rows(store_conn, names, ts, cols, {"window": "1 day"})
    # the session's time zone and date style do not change the answer
    before = matrix_rows(store_conn, names, ts, cols)
    store_conn.execute("SET TimeZone = 'America/New_York'")
    store_conn.execute("SET DateStyle = 'German, DMY'")
    assert matrix_rows(store_conn, names, ts, cols) == before


def test_only_the_admin_role_may_call_them(store_conn):
    for signature in ("pganalytics.lagged_correlation(timestamptz[], float8[], float8[], interval, jsonb)",
                      "pganalytics.lagged_correlation_values(float8[], float8[], float8[], float8, jsonb)",
                      "pganalytics.correlation_matrix_values(text[], timestamptz[], float8[], jsonb)"):
        granted = store_conn.execute(
            "SELECT array_agg(DISTINCT r.rolname ORDER BY r.rolname) FROM pg_roles r "
            "WHERE has_function_privilege(r.oid, %s, 'EXECUTE') "
            "AND NOT r.rolsuper AND r.rolname LIKE 'pganalytics%%'", (signature,)).fetchone()[0]
        assert "pganalytics_admin" in granted
        assert "pganalytics_collector" not in granted and "pganalytics_gateway" not in granted
        definer = store_conn.execute("SELECT prosecdef FROM pg_proc WHERE oid = %s::regprocedure",
                                     (signature,)).fetchone()[0]
        assert definer is False
