"""maintain()'s detection step (detect_live()) for a fleet: seconds per minute of data.

    .venv/bin/python bench/anomaly_live_speed.py [--instances 10000] [--chunk 500] [--repeat 3]

Starts one throwaway cluster (loopback, bench/store_ingest.py's settings), registers
`--instances` instances, each with a collector-like set of the series anomaly_inputs() reads:
database app's pg_database_* counters and gauges (every other instance a second database,
reports), the checkpointer's counters, pg_up, max_connections in settings_history, wait
sampling (wait_samples) on every other instance and three queries' stat deltas on every
fifth: 6 to 14 derived series an instance (9.1 on average). 40 minutes of 1m rollups (the
30-minute lookback of the counters and the checkpoints' window, then the minutes scored),
loaded with set-based INSERTs straight into the tables, not through the collector;
rollup_progress says all 40 minutes are rolled up. In the minute timed, 1 % of the instances
use over 90 % of their connections (events to open; the rest is quiet).

Then, as maintain() calls it (one call per chunk of `--chunk` instance ids, each with its own
range): warms every instance's detector state with 5 minutes of detection (committed), and
times the detection of the next minute for every instance, median of `--repeat` runs, each
in a rolled-back transaction (so every run scores the same minute from the same state and
writes the same events). The split (inputs / scoring / state write / recording / rest) is
what detect_live() says it spent on each (a DEBUG2 line, plpy.debug), summed over the
chunks. About 1.5 minutes at the default size (2 cores; most of it loading and warming up).
Prints and writes bench/results/anomaly-live-speed.json.
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

RESULTS = Path(__file__).resolve().parent / "results" / "anomaly-live-speed.json"
MINUTES = 40  # of 1m rollups: 30 of lookback, 5 of warm-up, the minute timed, and a few spare
WARM = (30, 35)  # the warm-up minutes [30, 35); the minute timed is 35
PARTS = ("inputs", "scoring", "state_write", "recording", "rest")

# (metric, kind, per-database): the series anomaly_inputs() reads, as the collector names them
SERIES = [("pg_database_blks_hit", "counter", True), ("pg_database_blks_read", "counter", True),
          ("pg_database_temp_bytes", "counter", True), ("pg_database_temp_files", "counter", True),
          ("pg_database_deadlocks", "counter", True), ("pg_database_xid_age", "gauge", True),
          ("pg_database_numbackends", "gauge", True), ("pg_checkpointer_num_requested", "counter", False),
          ("pg_checkpointer_num_timed", "counter", False), ("pg_checkpointer_buffers_written", "counter", False),
          ("pg_up", "gauge", False)]


def load(conn: psycopg.Connection, instances: int):
    """Every table anomaly_inputs() reads, filled set-based; returns the first minute."""
    start = conn.execute("SELECT date_trunc('hour', now()) - interval '1 hour'").fetchone()[0]
    end = start + timedelta(minutes=MINUTES)
    for parent in ("rollups_1m", "query_stat_deltas", "wait_samples"):
        conn.execute("SELECT pganalytics.ensure_partitions(%s::regclass, %s, %s)", (f"pganalytics.{parent}", start, end))
    conn.execute("SELECT pganalytics.register_instance(n, 'service=' || n) FROM unnest(%s::text[]) AS n",
                 ([f"i{k:05d}" for k in range(instances)],))
    conn.execute("SELECT setseed(0.5)")
    conn.execute(
        "INSERT INTO pganalytics.series (instance_id, metric, labels, kind) "
        "SELECT i.instance_id, m.metric, CASE WHEN m.per_db THEN jsonb_build_object('datname', d.datname) "
        "ELSE '{}' END, m.kind "
        "FROM pganalytics.instances i CROSS JOIN unnest(%s::text[], %s::text[], %s::boolean[]) AS m (metric, kind, per_db) "
        "CROSS JOIN LATERAL (SELECT 'app' AS datname UNION ALL SELECT 'reports' WHERE i.instance_id %% 2 = 0) d "
        "WHERE m.per_db OR d.datname = 'app'",
        ([s[0] for s in SERIES], [s[1] for s in SERIES], [s[2] for s in SERIES]))
    # Six samples a minute (10 s cycles); counters grow by a per-metric rate with jitter smaller
    # than a minute's growth (never a reset), gauges wander around a level. From the minute
    # timed on, 1 % of the instances use over 90 % of their connections (past the type's hard
    # limit): events to open, so the timed minute records some and skips the quiet rest.
    conn.execute(
        "INSERT INTO pganalytics.rollups_1m (instance_id, series_id, bucket, n, sum, min, max, last) "
        "SELECT s.instance_id, s.series_id, %s + m * interval '1 minute', 6, 6 * v.v, v.v, v.v, v.v "
        "FROM pganalytics.series s CROSS JOIN generate_series(0, %s - 1) AS m "
        "CROSS JOIN LATERAL (SELECT CASE s.metric "
        "    WHEN 'pg_database_blks_hit' THEN 1e6 + 59400 * (m + 0.3 * random()) "
        "    WHEN 'pg_database_blks_read' THEN 1e4 + 600 * (m + 0.3 * random()) "
        "    WHEN 'pg_database_temp_bytes' THEN 1e6 * (m + 0.3 * random()) "
        "    WHEN 'pg_database_temp_files' THEN m "
        "    WHEN 'pg_database_deadlocks' THEN 0 "
        "    WHEN 'pg_database_xid_age' THEN 5e7 + 1000 * m "
        "    WHEN 'pg_database_numbackends' THEN 20 + 3 * random() "
        "        + CASE WHEN s.instance_id %% 100 = 0 AND m >= %s AND s.labels ->> 'datname' = 'app' THEN 165 ELSE 0 END "
        "    WHEN 'pg_checkpointer_num_requested' THEN 3 + m / 20 "
        "    WHEN 'pg_checkpointer_num_timed' THEN 100 + m / 5 "
        "    WHEN 'pg_checkpointer_buffers_written' THEN 1e5 + 300 * (m + 0.3 * random()) "
        "    ELSE 1 END::float8 AS v) v",
        (start, MINUTES, WARM[1]))
    conn.execute("INSERT INTO pganalytics.settings_history (instance_id, name, setting, source, valid_from) "
                 "SELECT i.instance_id, 'max_connections', '200', 'configuration file', %s - interval '1 day' "
                 "FROM pganalytics.instances i", (start,))
    conn.execute("INSERT INTO pganalytics.wait_samples (instance_id, collected_at, interval_s, ticks, datname, "
                 "backend_type, state, samples) SELECT i.instance_id, %s + interval '90 seconds', 60, 60, 'app', "
                 "'client backend', 'active', 3 FROM pganalytics.instances i WHERE i.instance_id %% 2 = 0", (start,))
    conn.execute(
        "INSERT INTO pganalytics.query_stat_deltas (instance_id, dbid, userid, queryid, toplevel, collected_at, "
        "interval_s, calls, plans, total_plan_time, total_exec_time, exec_time_sq, rows, shared_blks_hit, "
        "shared_blks_read, shared_blks_dirtied, shared_blks_written, temp_blks_read, temp_blks_written, "
        "shared_blk_read_time, wal_bytes) "
        "SELECT i.instance_id, 16384, 10, q, true, %s + m * interval '1 minute' + interval '45 seconds', 60, "
        "100, 0, 0, 100 * (5 + random()), 0, 100, 1000, 10, 0, 0, 0, 0, 0, 0 "
        "FROM pganalytics.instances i CROSS JOIN generate_series(1001, 1003) q CROSS JOIN generate_series(0, %s - 1) m "
        "WHERE i.instance_id %% 5 = 0", (start, MINUTES))
    conn.execute("INSERT INTO pganalytics.rollup_progress (instance_id, rolled_until) "
                 "SELECT i.instance_id, %s FROM pganalytics.instances i", (end,))
    conn.execute("VACUUM ANALYZE")
    return start


def detect(conn: psycopg.Connection, ids: list[int], chunk: int, t0, t1) -> int:
    """detect_live() over every chunk of ids, each instance's range [t0, t1): points scored."""
    lo, hi = t0.timestamp(), t1.timestamp()
    scored = 0
    for k in range(0, len(ids), chunk):
        part = ids[k:k + chunk]
        scored += conn.execute("SELECT pganalytics.detect_live(%s, %s, %s)",
                               (part, [lo] * len(part), [hi] * len(part))).fetchone()[0]
    return scored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--chunk", type=int, default=500, help="instances per detect_live() call (maintain()'s chunks)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg-bindir")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pganalytics-live-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    began = time.perf_counter()
    try:
        cluster.init(SETTINGS)
        cluster.start()
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            started = time.perf_counter()
            start = load(conn, args.instances)
            rows = conn.execute("SELECT count(*) FROM pganalytics.rollups_1m").fetchone()[0]
            n_series = conn.execute("SELECT count(*) FROM pganalytics.series").fetchone()[0]
            print(f"loaded {args.instances} instances, {n_series:,} series, {rows:,} 1m rows in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            ids = [r[0] for r in conn.execute("SELECT instance_id FROM pganalytics.instances ORDER BY 1")]
            parts: list[dict] = []
            conn.add_notice_handler(lambda d: parts.append(json.loads(d.message_primary.split(": ", 1)[1]))
                                    if (d.message_primary or "").startswith("detect_live: {") else None)
            conn.execute("SET client_min_messages = debug2")
            minute = timedelta(minutes=1)
            started = time.perf_counter()
            warm_points = detect(conn, ids, args.chunk, start + WARM[0] * minute, start + WARM[1] * minute)
            warm = time.perf_counter() - started
            print(f"warm-up: {WARM[1] - WARM[0]} minutes, {warm_points:,} points in {warm:.1f} s", flush=True)
            runs, splits = [], []
            t0, t1 = start + WARM[1] * minute, start + (WARM[1] + 1) * minute
            for _ in range(args.repeat):
                parts.clear()
                with conn.transaction(force_rollback=True):
                    started = time.perf_counter()
                    points = detect(conn, ids, args.chunk, t0, t1)
                    runs.append(time.perf_counter() - started)
                    events = conn.execute("SELECT count(*) FROM pganalytics.anomalies").fetchone()[0]
                splits.append({p: sum(d.get(p, 0.0) for d in parts) for p in PARTS})
                print(f"one minute of {args.instances} instances: {points:,} points, {events} events, "
                      f"{runs[-1]:.2f} s  " + " ".join(f"{p} {v:.2f}" for p, v in splits[-1].items()), flush=True)
            median = statistics.median(runs)
            split = splits[runs.index(median)] if median in runs else splits[0]
        result = {"instances": args.instances, "series": n_series, "rollup_rows": rows, "chunk": args.chunk,
                  "derived_points_per_minute": points, "events": events,
                  "runs": "each run in a rolled-back transaction: the same minute from the same state",
                  "seconds_per_minute": round(median, 3),
                  "ms_per_instance": round(1000 * median / args.instances, 3),
                  "split_seconds": {p: round(v, 3) for p, v in split.items()},
                  "all_runs_seconds": [round(r, 3) for r in runs],
                  "warm_up_seconds": round(warm, 2), "bench_seconds": round(time.perf_counter() - began)}
        print(json.dumps(result, indent=2))
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
