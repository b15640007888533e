"""pganalytics.correlations() over stored data: 50 metrics of one instance over one day at
1-minute resolution (the issue's yardstick), read from the store's 1m rollups.

    .venv/bin/python bench/correlations_speed.py [--metrics 50] [--repeat 5]

Starts a throwaway cluster, installs the store, registers one instance with `--metrics` gauge
series of a day of 1m rollups (written set-based straight into rollups_1m; rollup_progress says
they are rolled up): every metric a mix of three shared daily drivers, some lagged by 1-5
minutes, plus noise, so there are leads to find. Times correlations(instance, metrics,
'1 day', '{"resolution": "1m"}') (read_series() of each metric, the grid, the matrix with lags
to 5 minutes), median of --repeat, and how many pairs came out strong; against plain SQL
(corr() over a self-join of the same rollups: the lag-0 matrix, and lags 0-5 minutes, which
is all SQL's corr() can do without the preparation and the chance bound). Prints and writes
bench/results/correlations-speed.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from pganalytics import localpg, store

RESULTS = Path(__file__).resolve().parent / "results" / "correlations-speed.json"


def load(conn: psycopg.Connection, metrics: int) -> list[str]:
    iid = conn.execute("SELECT pganalytics.register_instance('c1', 'service=c1')").fetchone()[0]
    start = conn.execute("SELECT date_trunc('minute', now()) - interval '1 day'").fetchone()[0]
    conn.execute("SELECT pganalytics.ensure_partitions('pganalytics.rollups_1m'::regclass, %s, %s + interval '2 days')",
                 (start, start))
    conn.execute("INSERT INTO pganalytics.rollup_progress (instance_id, rolled_until) VALUES (%s, now())", (iid,))
    rng = np.random.default_rng(1)
    n = 1440
    drivers = [np.cumsum(rng.normal(0, 1, n + 10)) + 20 * np.sin(2 * np.pi * (np.arange(n + 10) / 1440 + k / 3))
               for k in range(3)]
    names = []
    for m in range(metrics):
        name = f"bench_metric_{m:02d}"
        names.append(name)
        lag = int(rng.integers(0, 6)) if m % 3 else 0
        d = drivers[m % 3][10 - lag:10 - lag + n]
        values = 100 + d * rng.uniform(0.5, 2) + rng.normal(0, 3, n)
        sid = conn.execute("INSERT INTO pganalytics.series (instance_id, metric, labels, kind) VALUES (%s, %s, '{}', 'gauge') "
                           "RETURNING series_id", (iid, name)).fetchone()[0]
        conn.execute("INSERT INTO pganalytics.rollups_1m (instance_id, series_id, bucket, n, sum, min, max, last) "
                     "SELECT %s, %s, %s + (u.k - 1) * interval '1 minute', 6, 6 * u.v, u.v, u.v, u.v "
                     "FROM unnest(%s::float8[]) WITH ORDINALITY AS u (v, k)", (iid, sid, start, list(map(float, values))))
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = localpg.reachable_dir(tempfile.mkdtemp(prefix="pga-corr-"))
    cluster = localpg.LocalCluster(Path(base) / "data", localpg.free_port(), localpg.find_bindir())
    try:
        cluster.init()
        cluster.start()
        localpg.wait_ready(cluster.dsn)
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            names = load(conn, args.metrics)
            times, rows = [], []
            for _ in range(args.repeat):
                began = time.perf_counter()
                rows = conn.execute("SELECT x, y, r, lag, r_at_lag, insight FROM pganalytics.correlations("
                                    "'c1', %s, '1 day', '{\"resolution\": \"1m\"}')", (names,)).fetchall()
                times.append(time.perf_counter() - began)
            version = conn.execute("SHOW server_version").fetchone()[0]
            sql_times = {}
            for lags in (0, 5):
                began = time.perf_counter()
                conn.execute(
                    "WITH v AS MATERIALIZED (SELECT series_id, bucket, sum / n AS v FROM pganalytics.rollups_1m) "
                    "SELECT a.series_id, b.series_id, k, corr(a.v, b.v) "
                    "FROM v a CROSS JOIN generate_series(-%s::int, %s::int) AS k "
                    "JOIN v b ON b.bucket = a.bucket + k * interval '1 minute' AND a.series_id < b.series_id "
                    "GROUP BY 1, 2, 3", (lags, lags)).fetchall()
                sql_times[lags] = time.perf_counter() - began
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    strong = [r for r in rows if r[5] is not None and r[2] is not None]
    lagged = [r for r in strong if r[3].total_seconds() != 0]
    result = {"metrics": args.metrics, "points": 1440, "pairs": len(rows), "strong_pairs": len(strong),
              "strong_with_lag": len(lagged), "seconds_median": round(statistics.median(times), 3),
              "seconds": [round(t, 3) for t in times], "server": version,
              "plain_sql_corr_lag0_s": round(sql_times[0], 3), "plain_sql_corr_lags_5min_s": round(sql_times[5], 3)}
    print(f"correlations(): {args.metrics} metrics x 1440 1-minute points, lags to 5 min: "
          f"{result['seconds_median']} s (median of {args.repeat}; first {result['seconds'][0]} s), "
          f"{len(rows)} pairs, {len(strong)} strong ({len(lagged)} with a lead)")
    print(f"plain SQL corr() over a self-join, same rollups: lag 0 only {result['plain_sql_corr_lag0_s']} s, "
          f"lags -5..5 min {result['plain_sql_corr_lags_5min_s']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
