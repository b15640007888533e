"""Does reading one instance's statements over a window cost the same at any hour of the day?

    .venv/bin/python bench/query_stat_reads.py [--instances 20] [--queries 200] [--cycle-s 15] [--hours 12]

Starts one throwaway cluster (loopback, bench/store_ingest.py's settings), installs the store,
registers `--instances` instances and fills one day partition of query_stat_deltas with their
statements' deltas (`--queries` entries every `--cycle-s`, the rows ingest_query_stats()
writes): first `--hours` / 6 of the day ("early"), then up to `--hours` ("late"). At each,
for one instance and the newest 5 minutes, it times the reads that take one instance's
statements over a window: api_queries() (the gateway's statement list) and diagnosis_inputs()
(what diagnose() reads); detect_live() reads the same way every minute. Each is timed with the
(instance_id, collected_at) index of revision 0011 and, in the same run, with it dropped (the
store before 0011: only (instance_id, queryid, collected_at) and the BRIN on time, so the read
walks every entry the instance has in the day's partition). With the index the late read
costs what the early one does; without it the cost grows with the hours already stored.

The index's price is paid at ingest: real 200-entry snapshots through the staging table and
ingest_query_stats(), timed with the index, without it, and with it again (the mean of the two
runs with the index against the one without, so drift in the run counts against neither).
Prints the figures; writes bench/results/query-stat-reads.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from pganalytics import localpg, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_ingest import SETTINGS  # noqa: E402  (the same server settings as the ingest bench)

RESULTS = Path(__file__).resolve().parent / "results" / "query-stat-reads.json"
INDEX = "pganalytics.query_stat_deltas_by_time"
CREATE_INDEX = "CREATE INDEX query_stat_deltas_by_time ON pganalytics.query_stat_deltas (instance_id, collected_at)"
WINDOW = timedelta(minutes=5)


def setup(conn: psycopg.Connection, args: argparse.Namespace) -> datetime:
    conn.execute("SELECT pganalytics.register_instance(n, 'service=' || n) FROM unnest(%s::text[]) AS n",
                 ([f"i{k:04d}" for k in range(args.instances)],))
    day = conn.execute("SELECT date_trunc('day', now() - interval '1 day')").fetchone()[0]
    conn.execute("SELECT pganalytics.ensure_partitions('pganalytics.query_stat_deltas'::regclass, %s, %s)",
                 (day, day + timedelta(hours=23)))
    return day


def load(conn: psycopg.Connection, args: argparse.Namespace, day: datetime, from_h: float, to_h: float) -> None:
    """The deltas of [from_h, to_h) hours into the day, in cycle order (as snapshots arrive)."""
    first, cycles = int(from_h * 3600 // args.cycle_s), int(to_h * 3600 // args.cycle_s)
    step = 240  # cycles an INSERT
    for c0 in range(first, cycles, step):
        conn.execute(
            "INSERT INTO pganalytics.query_stat_deltas (instance_id, dbid, userid, queryid, toplevel, collected_at,"
            " interval_s, calls, plans, total_plan_time, total_exec_time, exec_time_sq, rows, shared_blks_hit,"
            " shared_blks_read, shared_blks_dirtied, shared_blks_written, temp_blks_read, temp_blks_written,"
            " shared_blk_read_time, wal_bytes) "
            "SELECT i.instance_id, 1, 10, q, true, %s + c * %s * interval '1 second', %s, 10, 0, 0, 5.0 + q %% 7, 30.0,"
            " 10, 100, 1, 0, 0, 0, 0, 0.1, 0 "
            "FROM generate_series(%s::int, %s::int) c, pganalytics.instances i, generate_series(1, %s::int) q "
            "ORDER BY c, i.instance_id, q",
            (day, args.cycle_s, args.cycle_s, c0, min(c0 + step, cycles) - 1, args.queries))
    conn.execute("VACUUM ANALYZE pganalytics.query_stat_deltas")


def median_ms(conn: psycopg.Connection, sql: str, params: tuple, repeat: int) -> float:
    conn.execute(sql, params).fetchall()  # warm: the first call plans and reads from disk
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


READS = {
    "api_queries": "SELECT * FROM pganalytics.api_queries(%s, 50, %s, %s)",
    "diagnosis_inputs": "SELECT pganalytics.diagnosis_inputs(%s, %s, %s)",
}


def time_reads(conn: psycopg.Connection, instance: str, end: datetime, repeat: int) -> dict:
    """Median ms of each read of the newest 5 minutes, with the index and with it dropped."""
    with_index = {read: median_ms(conn, sql, (instance, end - WINDOW, end), repeat) for read, sql in READS.items()}
    conn.execute(f"DROP INDEX {INDEX}")
    without = {read: median_ms(conn, sql, (instance, end - WINDOW, end), repeat) for read, sql in READS.items()}
    conn.execute(CREATE_INDEX)
    return {read: {"with_index_ms": round(with_index[read], 2), "without_index_ms": round(without[read], 2)}
            for read in READS}


def ingest_ms(conn: psycopg.Connection, at: datetime, args: argparse.Namespace, cycles: int) -> float:
    """Median ms of one 200-entry snapshot staged and ingested (as the collector's Sink does)."""
    ids = [r[0] for r in conn.execute("SELECT instance_id FROM pganalytics.instances ORDER BY 1")]
    times = []
    for c in range(cycles):
        for iid in ids:
            with conn.transaction():
                started = time.perf_counter()
                conn.execute(
                    "INSERT INTO pganalytics.query_stats_stage (batch_no, dbid, userid, queryid, toplevel, calls,"
                    " total_exec_time, rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written,"
                    " local_blks_hit, local_blks_read, temp_blks_read, temp_blks_written, shared_blk_read_time,"
                    " shared_blk_write_time, wal_records, wal_fpi, wal_bytes) "
                    "SELECT 0, 1, 10, q, true, 10 * (%s + 1), 50.0 * (%s + 1), 30, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0"
                    " FROM generate_series(1, %s::int) q", (c, c, args.queries))
                conn.execute("SELECT pganalytics.ingest_query_stats(0, %s, %s)", (iid, at + c * timedelta(seconds=args.cycle_s)))
                times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cycle-s", type=int, default=15)
    ap.add_argument("--hours", type=float, default=12)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--ingest-cycles", type=int, default=6)
    ap.add_argument("--pg-bindir")
    args = ap.parse_args()
    if not 2 <= args.hours <= 20:
        ap.error("--hours must be 2 to 20 (the data, the ingest runs after it, within one day partition)")
    if args.instances < 1 or args.queries < 1 or not 1 <= args.cycle_s <= 600:
        ap.error("--instances and --queries must be positive, --cycle-s 1 to 600")
    base = Path(tempfile.mkdtemp(prefix="pganalytics-qsreads-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    try:
        cluster.init(SETTINGS)
        cluster.start()
        store.upgrade(cluster.dsn)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            day = setup(conn, args)
            instance = f"i{args.instances // 2:04d}"
            timed, rows = {}, {}
            for name, hours in (("early", args.hours / 6), ("late", args.hours)):
                started = time.perf_counter()
                load(conn, args, day, 0 if name == "early" else args.hours / 6, hours)
                rows[name] = conn.execute("SELECT count(*) FROM pganalytics.query_stat_deltas").fetchone()[0]
                print(f"{name}: {hours:.1f} h stored, {rows[name]:,} deltas ({rows[name] // args.instances:,} an "
                      f"instance), loaded in {time.perf_counter() - started:.0f} s", flush=True)
                timed[name] = time_reads(conn, instance, day + timedelta(hours=hours), args.repeat)
            # ingest after the loaded data, with the index, without it, then with it again
            t_ingest = day + timedelta(hours=args.hours, minutes=10)
            span = timedelta(seconds=args.cycle_s * args.ingest_cycles)
            ingest_with = [ingest_ms(conn, t_ingest, args, args.ingest_cycles)]
            conn.execute(f"DROP INDEX {INDEX}")
            ingest_without = ingest_ms(conn, t_ingest + span, args, args.ingest_cycles)
            conn.execute(CREATE_INDEX)
            ingest_with.append(ingest_ms(conn, t_ingest + 2 * span, args, args.ingest_cycles))
        reads = {}
        for read in READS:
            e, late = timed["early"][read], timed["late"][read]
            reads[read] = {"early": e, "late": late,
                           "late_over_early_with": round(late["with_index_ms"] / e["with_index_ms"], 2),
                           "late_over_early_without": round(late["without_index_ms"] / e["without_index_ms"], 2),
                           "late_speedup": round(late["without_index_ms"] / late["with_index_ms"], 1)}
            print(f"{read:>17}: with the index {e['with_index_ms']:.1f} ms early, {late['with_index_ms']:.1f} ms late; "
                  f"without {e['without_index_ms']:.1f} ms early, {late['without_index_ms']:.1f} ms late "
                  f"(late: {reads[read]['late_speedup']:.1f}x faster with it)", flush=True)
        ingest = {"without_index_ms": round(ingest_without, 2), "with_index_ms": [round(x, 2) for x in ingest_with],
                  "with_over_without": round(statistics.mean(ingest_with) / ingest_without, 3)}
        print(f"ingest_query_stats() of a {args.queries}-entry snapshot: {ingest_without:.2f} ms without the index, "
              f"{ingest_with[0]:.2f} / {ingest_with[1]:.2f} ms with it ({ingest['with_over_without']:.3f}x)")
        result = {"instances": args.instances, "queries": args.queries, "cycle_s": args.cycle_s, "hours": args.hours,
                  "rows": rows, "window_minutes": 5, "reads": reads, "ingest": ingest}
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
