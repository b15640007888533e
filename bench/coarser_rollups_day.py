"""Is the cost of the coarser rollups flat through the day?

    .venv/bin/python bench/coarser_rollups_day.py [--instances 100] [--series 250] [--minutes 1440]

Starts one throwaway cluster (loopback, bench/store_ingest.py's settings), registers
`--instances` instances of `--series` series, writes `--minutes` of 1m rollups for each (the
rows maintain() writes, minute by minute) into one day partition, then times
pganalytics.roll_up_coarser() for all instances at the minutes where buckets complete early,
in the middle and at the end of that day (each call rolled back, so every call does the same
work), and at the minute after each (nothing completes: the call should cost ~nothing).

The coarser levels read the finer rows of the completed buckets only, by the key (instance_id,
series_id, bucket): the cost per call must not grow with the rows already stored that day.
Prints the times and late/early; writes bench/results/coarser-rollups-day.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg

from pganalytics import localpg, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_ingest import SETTINGS  # noqa: E402  (the same server settings as the ingest bench)

RESULTS = Path(__file__).resolve().parent / "results" / "coarser-rollups-day.json"


def load(conn: psycopg.Connection, instances: int, series: int, minutes: int):
    conn.execute("SELECT pganalytics.register_instance(n, 'service=' || n) FROM unnest(%s::text[]) AS n",
                 ([f"i{k:05d}" for k in range(instances)],))
    conn.execute("INSERT INTO pganalytics.series (instance_id, metric, labels) "
                 "SELECT i.instance_id, 'm', jsonb_build_object('k', k) "
                 "FROM pganalytics.instances i, generate_series(1, %s) k", (series,))
    day = conn.execute("SELECT date_trunc('day', now() - interval '1 day')").fetchone()[0]
    conn.execute("SELECT pganalytics.ensure_partitions('pganalytics.rollups_1m'::regclass, %s, %s + interval '1 day')",
                 (day, day))
    for m in range(minutes):  # minute by minute, as maintain() writes them
        conn.execute("INSERT INTO pganalytics.rollups_1m (instance_id, series_id, bucket, n, sum, min, max, last) "
                     "SELECT s.instance_id, s.series_id, %s, 60, 60.0 * %s, 0, %s, %s FROM pganalytics.series s",
                     (day + timedelta(minutes=m), m, m, m))
    conn.execute("VACUUM ANALYZE pganalytics.rollups_1m")
    return day


def time_call(conn: psycopg.Connection, ids: list[int], day, minute: int, repeat: int) -> tuple[float, int]:
    """Median seconds of roll_up_coarser() for the minute ending at `minute`, and its rows."""
    t0, t1 = day + timedelta(minutes=minute - 1), day + timedelta(minutes=minute)
    times, rows = [], 0
    for _ in range(repeat):
        with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            rows = conn.execute("SELECT pganalytics.roll_up_coarser(%s, %s, %s, %s)",
                                (ids, [t0] * len(ids), [t1] * len(ids), [t1] * len(ids))).fetchone()[0]
            times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--series", type=int, default=250)
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg-bindir")
    args = ap.parse_args()
    if not 60 <= args.minutes <= 1440:
        ap.error("--minutes must be within one day partition: 60 to 1440")
    base = Path(tempfile.mkdtemp(prefix="pganalytics-coarser-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    try:
        cluster.init(SETTINGS)
        cluster.start()
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            started = time.perf_counter()
            day = load(conn, args.instances, args.series, args.minutes)
            print(f"loaded {args.instances * args.series * args.minutes:,} 1m rows in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            ids = [r[0] for r in conn.execute("SELECT instance_id FROM pganalytics.instances ORDER BY 1")]
            # minutes that complete a 5m, a 15m and an hour bucket: early, middle, end of the data
            points = {"early": 60, "middle": 60 * (args.minutes // 120), "late": 60 * (args.minutes // 60)}
            out: dict[str, dict] = {}
            for name, minute in points.items():
                done, rows = time_call(conn, ids, day, minute, args.repeat)
                idle, _ = time_call(conn, ids, day, minute + 1, args.repeat)
                out[name] = {"minute": minute, "seconds": round(done, 4), "rows": rows, "idle_seconds": round(idle, 4),
                             "us_per_row": round(1e6 * done / rows, 2)}
                print(f"{name:>6} (minute {minute:4d}): {rows} rows in {done * 1000:.0f} ms "
                      f"({1e6 * done / rows:.1f} us/row); the minute after: {idle * 1000:.0f} ms", flush=True)
        ratio = out["late"]["seconds"] / out["early"]["seconds"]
        print(f"late / early: {ratio:.2f}")
        result = {"instances": args.instances, "series": args.series, "minutes": args.minutes,
                  "points": out, "late_over_early": round(ratio, 2)}
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
