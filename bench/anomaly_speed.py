"""How fast the anomaly detector scores: the newest point of many series, and whole series.

    .venv/bin/python bench/anomaly_speed.py [--series 10000] [--points 10000] [--repeat 7]

1. In numpy (plpython/anomaly.py, as the live path runs it inside PostgreSQL): one Bank step
   for the newest point of --series series whose state has seen 200 points; and the same with
   the state decoded from and encoded to the bytes a block stores (live_fold(), one minute).
2. In the store (a throwaway cluster on loopback): pganalytics.anomaly_scores() over one series
   of --points points (points/s), against a plain-SQL detector measured in the same run (a
   rolling z-score over the previous 100 points with window functions): what PL/Python costs
   over what PostgreSQL already has the math for.
Medians of --repeat runs. Writes bench/results/anomaly-speed.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pganalytics import localpg, store  # noqa: E402
from plpython import anomaly  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "anomaly-speed.json"
T0 = 1_700_000_000.0

ROLLING_Z = """
SELECT count(*) FILTER (WHERE abs(z) >= 4.4) FROM (
    SELECT (v - avg(v) OVER w) / nullif(stddev_samp(v) OVER w, 0) AS z
    FROM unnest(%s::timestamptz[], %s::float8[]) AS u (t, v)
    WINDOW w AS (ORDER BY t ROWS BETWEEN 100 PRECEDING AND 1 PRECEDING)) s"""


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def warm_bank(size: int) -> tuple[anomaly.Bank, np.ndarray]:
    rng = np.random.default_rng(1)
    bank = anomaly.Bank(size)
    for i in range(200):
        bank.step(np.full(size, T0 + 60 * i), rng.normal(100, 5, size))
    return bank, rng.normal(100, 5, size)


def numpy_figures(size: int, repeat: int) -> dict:
    bank, x = warm_bank(size)
    t = np.full(size, T0 + 60 * 200)
    saved = {k: v.copy() for k, v in bank.state.items()}

    def one_step():
        bank.state = {k: v.copy() for k, v in saved.items()}
        bank.step(t, x)
    step = median_seconds(one_step, repeat)
    keys = [f"m/{i:06d}" for i in range(size)]
    sent = {part: anomaly.encode(anomaly.pack(saved, part)) for part in anomaly.PARTS}
    fold = median_seconds(lambda: anomaly.live_fold(keys, sent, keys, [t[0]] * size, list(x)), repeat)
    return {"series": size, "step_ms": round(1000 * step, 2), "live_fold_ms": round(1000 * fold, 2),
            "hot_state_bytes_per_series": anomaly.state_width("hot") * 8,
            "profile_bytes_per_series": anomaly.state_width("profiles") * 8}


def sql_figures(dsn: str, points: int, repeat: int) -> dict:
    rng = np.random.default_rng(2)
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    ts = [start + timedelta(minutes=i) for i in range(points)]
    values = list(rng.normal(100, 5, points))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM pganalytics.anomaly_scores(%s, %s)", (ts[:10], values[:10]))  # load
        plpy = median_seconds(lambda: conn.execute(
            "SELECT count(*) FILTER (WHERE is_anomaly) FROM pganalytics.anomaly_scores(%s, %s)", (ts, values)).fetchone(),
            repeat)
        plain = median_seconds(lambda: conn.execute(ROLLING_Z, (ts, values)).fetchone(), repeat)
    return {"points": points, "anomaly_scores_seconds": round(plpy, 3),
            "anomaly_scores_points_per_second": round(points / plpy),
            "sql_rolling_z_seconds": round(plain, 4), "sql_rolling_z_points_per_second": round(points / plain),
            "plpython_over_sql": round(plpy / plain, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--pg-bindir")
    args = ap.parse_args()
    result = {"numpy": numpy_figures(args.series, args.repeat)}
    n = result["numpy"]
    print(f"newest point of {args.series:,} series: Bank.step {n['step_ms']} ms, "
          f"with state bytes in and out (live_fold) {n['live_fold_ms']} ms", flush=True)
    base = Path(tempfile.mkdtemp(prefix="pganalytics-anomaly-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    try:
        cluster.init({})
        cluster.start()
        store.upgrade(cluster.dsn)
        result["sql"] = sql_figures(cluster.dsn, args.points, args.repeat)
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    s = result["sql"]
    print(f"anomaly_scores over {args.points:,} points: {s['anomaly_scores_seconds']} s "
          f"({s['anomaly_scores_points_per_second']:,} points/s); plain-SQL rolling z-score: "
          f"{s['sql_rolling_z_seconds']} s ({s['sql_rolling_z_points_per_second']:,} points/s), "
          f"PL/Python / SQL = {s['plpython_over_sql']}")
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
