"""The store at 100 -> 1,000 -> 10,000 instances: ingest, maintain(), bytes per instance-day and
the main reads, and whether each grows linearly.

    .venv/bin/python bench/store_fleet.py [--fleets 100 1000 10000] [--minutes 10] [--pg-bindir DIR]

One throwaway cluster. One real collection cycle of that cluster (bench/delivery_throughput.py's
target: tables, ~100 statements) gives every instance's batch shapes: the collector's own
series set and its pg_stat_statements snapshot, padded to 200 entries (the top-200 statistics
of the issue) with more queryids of the same shape. Every instance then sends `--minutes` of
sample time (samples every 10 s, the collector's default; pg_stat_statements every
`--stats-every-s`, 60 by default: 200 entries x 10,000 instances every 10 s would be 200,000
MERGEd rows a second, this machine's whole upsert ceiling) through the product's Delivery path, and maintain() runs after each simulated minute, as the
daemon does. A full simulated day at 10,000 instances is 21.6 G samples (hours here and ~170 GB):
the window is measured and the per-day figures are the window's times 1440 / minutes, which
holds because every cost here is per sample, per series-minute or per batch (partitions by
day; nothing scans history).

Reported per fleet: ingest seconds per simulated minute, maintain() seconds per simulated
minute, bytes per instance-day (relation sizes / instances * 1440 / minutes), and median
latency of the gateway's main reads: api_instances(), api_queries() over the window,
read_series() of one series over 24 h (auto resolution) and of a metric across its labels.
Growth 100 -> 10,000: each figure per instance (reads: absolute) relative to the smallest
fleet; 1.0 is linear. Writes bench/results/store-fleet.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_throughput import prepare_target  # noqa: E402

from pganalytics import localpg, store  # noqa: E402
from pganalytics.collector import pgss  # noqa: E402
from pganalytics.collector.batch import QueryStatsBatch, RowsBatch, SamplesBatch  # noqa: E402
from pganalytics.collector.cycle import run_cycle  # noqa: E402
from pganalytics.collector.delivery import Delivery  # noqa: E402
from pganalytics.collector.spool import Spool  # noqa: E402

SETTINGS = {"shared_buffers": "4GB", "max_wal_size": "16GB", "checkpoint_timeout": "30min"}
QUERIES = 200
CALLS = list(pgss.COLUMNS).index("calls")
TOTAL = list(pgss.COLUMNS).index("total_exec_time")
QUERYID = list(pgss.COLUMNS).index("queryid")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pad_statements(copy_data: bytes) -> list[list[str]]:
    rows = [line.split("\t") for line in copy_data.decode().splitlines()]
    out = []
    for k in range(QUERIES):
        f = list(rows[k % len(rows)])
        f[QUERYID] = str(900_000_000 + k)
        out.append(f)
    return out


def stats_copy(rows: list[list[str]], tick: int, instance_no: int) -> bytes:
    """Every 4th statement ran once more per tick (1 ms each)."""
    lines = []
    for k, f in enumerate(rows):
        f = list(f)
        moved = (tick + instance_no + k) // 4 if k % 4 == 0 else 0
        f[CALLS] = str(int(f[CALLS]) + moved)
        f[TOTAL] = repr(float(f[TOTAL]) + moved)
        lines.append("\t".join(f))
    return ("\n".join(lines) + "\n").encode()


def timed(conn, sql: str, params, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2)


def run_fleet(cluster, template: list, n: int, minutes: int, stats_every_s: int, base: Path) -> dict:
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS fleet")
        admin.execute("CREATE DATABASE fleet")
    dsn = cluster.dsn_for("fleet")
    store.upgrade(dsn)
    names = [f"f{i:05d}" for i in range(n)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance(x, 'service=' || x) FROM unnest(%s::text[]) AS x", (names,))
    samples_t = [b for b in template if isinstance(b, SamplesBatch)]
    rows_t = [b for b in template if isinstance(b, RowsBatch) and b.source != "plans"]
    stats_t = next(b for b in template if isinstance(b, QueryStatsBatch))
    stat_rows = pad_statements(stats_t.copy_data)
    series_per_instance = sum(len(b.samples) for b in samples_t)
    t0 = (datetime.now(timezone.utc) - timedelta(minutes=minutes + 30)).replace(second=0, microsecond=0)
    delivery = Delivery(dsn, Spool(base / f"spool-{n}"))
    ingest_s = maintain_s = 0.0
    with psycopg.connect(dsn, autocommit=True) as m:
        for minute in range(minutes):
            started = time.perf_counter()
            for tick in range(6):
                batches: list = []
                for i, name in enumerate(names):
                    at = t0 + timedelta(seconds=60 * minute + 10 * tick + i * 10 / n)
                    for b in samples_t:
                        vals = [(mt, lab, k, v + tick + minute) for mt, lab, k, v in b.samples]
                        batches.append(SamplesBatch(name, b.source, at, vals, b.databases))
                    first = minute == 0 and tick == 0
                    if tick % (stats_every_s // 10) == 0:
                        batches.append(QueryStatsBatch(name, at, stats_copy(stat_rows, 6 * minute + tick, i), QUERIES,
                                                       stats_t.dealloc, stats_t.stats_reset,
                                                       [(int(f[QUERYID]), "SELECT ...") for f in stat_rows] if first else []))
                    if tick == 0:
                        batches += [dataclasses.replace(b, instance=name, collected_at=at) for b in rows_t]
                for g in range(0, len(batches), delivery.max_group):
                    assert delivery._deliver(batches[g:g + delivery.max_group]), "the store refused a group"
            ingest_s += time.perf_counter() - started
            started = time.perf_counter()
            while m.execute("SELECT pganalytics.maintain()").fetchone()[0].get("behind"):
                pass
            maintain_s += time.perf_counter() - started
            log(f"{n} instances: minute {minute + 1}/{minutes}: ingest {ingest_s:.1f} s, maintain {maintain_s:.1f} s")
        assert delivery.refused_groups == 0
        sizes = dict(m.execute(
            "SELECT coalesce(p.parent, c.relname), sum(pg_total_relation_size(c.oid))::bigint "
            "FROM pg_class c LEFT JOIN LATERAL (SELECT i.inhparent::regclass::text AS parent FROM pg_inherits i "
            "WHERE i.inhrelid = c.oid) p ON true "
            "WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relkind IN ('r', 'm') GROUP BY 1").fetchall())
        per_day = 1440 / minutes
        # time-partitioned tables grow with time: scaled to a day; the others hold current state
        # (series, layouts, state, statistics' last snapshot) and do not; staging is transient
        timed_tables = {k for k in sizes if k.startswith("pganalytics.")}
        by_table = {k.removeprefix("pganalytics."): round(v * per_day / n) for k, v in sizes.items() if k in timed_tables}
        state = {k: round(v / n) for k, v in sizes.items() if k not in timed_tables and not k.endswith("_stage") and v}
        probe = names[n // 2]
        window = (t0, t0 + timedelta(minutes=minutes))
        reads = {
            "api_instances_ms": timed(m, "SELECT * FROM pganalytics.api_instances", ()),
            "api_queries_window_ms": timed(m, "SELECT * FROM pganalytics.api_queries(%s, 50, %s, %s)", (probe, *window)),
            "read_series_one_24h_ms": timed(m, "SELECT * FROM pganalytics.read_series(%s, 'pg_up', %s, %s)",
                                            (probe, window[1] - timedelta(hours=24), window[1])),
            "read_series_metric_1h_raw_ms": timed(
                m, "SELECT * FROM pganalytics.read_series(%s, %s, %s, %s)",
                (probe, samples_t[-1].samples[0][0], window[1] - timedelta(hours=1), window[1])),
        }
        rollup_rows = m.execute("SELECT count(*) FROM pganalytics.rollups_1m").fetchone()[0]
    delivery._sink.conn.close() if delivery._sink else None
    return {"instances": n, "series_per_instance": series_per_instance, "query_entries_per_instance": QUERIES,
            "query_stats_every_s": stats_every_s,
            "simulated_minutes": minutes, "ingest_s_per_minute": round(ingest_s / minutes, 3),
            "maintain_s_per_minute": round(maintain_s / minutes, 3),
            "bytes_per_instance_day": sum(by_table.values()), "bytes_per_instance_day_by_table": by_table,
            "state_bytes_per_instance": sum(state.values()), "state_bytes_per_instance_by_table": state,
            "rollup_1m_rows": rollup_rows, **reads}


def week_bytes(run: dict) -> dict:
    """A week of 10,000 instances under the default retention (store_settings)."""
    keep_days = {"sample_frames": 2, "snapshots": 2, "rollups_1m": 7, "rollups_5m": 7, "rollups_15m": 7,
                 "rollups_1h": 7, "query_stat_deltas": 7, "wait_samples": 2}
    total = run["state_bytes_per_instance"] * 10_000
    for table, per_day in run["bytes_per_instance_day_by_table"].items():
        total += per_day * keep_days[table] * 10_000
    return {"bytes": total, "gib": round(total / 2**30, 1), "retention_days": keep_days}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fleets", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--stats-every-s", type=int, default=60, choices=[10, 20, 30, 60],
                    help="pg_stat_statements snapshot cadence (samples: every 10 s)")
    ap.add_argument("--pg-bindir")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "store-fleet.json"))
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pganalytics-fleet-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    try:
        cluster.init(SETTINGS)
        cluster.start()
        prepare_target(cluster.dsn)
        report = run_cycle("template", cluster.dsn)
        assert report.up, report.unavailable
        template = [b for b in report.batches if not isinstance(b, RowsBatch) or b.rows]
        runs = []
        for n in args.fleets:
            runs.append(run_fleet(cluster, template, n, args.minutes, args.stats_every_s, base))
            log(json.dumps(runs[-1]))
        small = runs[0]
        growth = {}
        for r in runs[1:]:
            k = r["instances"] / small["instances"]
            growth[str(r["instances"])] = {
                "ingest_per_instance": round(r["ingest_s_per_minute"] / small["ingest_s_per_minute"] / k, 2),
                "maintain_per_instance": round(r["maintain_s_per_minute"] / small["maintain_s_per_minute"] / k, 2),
                "bytes_per_instance": round(r["bytes_per_instance_day"] / small["bytes_per_instance_day"], 2),
                **{key: round(r[key] / small[key], 2) for key in r if key.endswith("_ms")}}
        results = {"runs": runs, "growth_vs_smallest": growth,
                   "week_at_10000": week_bytes(runs[-1])}
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
