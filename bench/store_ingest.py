"""Sustained ingest through the product's delivery path, against the COPY ceiling measured in the
same run.

    .venv/bin/python bench/store_ingest.py [--instances 1000] [--series 250] [--seconds 900]
        [--interval-s 1] [--streams 1 2] [--pg-bindir DIR]

Starts one throwaway cluster (loopback; shared_buffers 4GB, max_wal_size 16GB, as in
../shared/reference/perf-ceilings-pg15.md). `--instances` instances of `--series` series each
(metric names and labels like the collector's) are registered through the real Sink.

- ceiling (the issue's): a binary COPY of the same samples as rows (instance_id, series_id, ts,
  value) into an
  UNLOGGED heap with no index, one stream; the COPY data is encoded before the clock starts,
  so the figure is the server's, not the client's.
- product: the simulated fleet sends `--seconds` of sample time (a snapshot of every instance
  every `--interval-s`) through Sink.deliver_group (the collector's grouped COPY of frames +
  one ingest_samples() call per group of 200 batches: ledger, layouts, idempotency), from 1
  or 2 delivery processes splitting the instances (each warmed up first with one snapshot
  of its instances, as a running collector is), while a third connection calls
  pganalytics.maintain() back to back (rollups 1m/5m/15m/1h, series state, retention), as the
  daemon does. The clock stops when the last sample is delivered AND maintain() has rolled up
  every complete minute: rollups and state are part of the measured work.

Samples/s = samples stored / that time; ratio = product / ceiling. Checks at the end that every
sample is stored once and the rollups count every complete minute's samples. Writes
bench/results/store-ingest.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psycopg

from pganalytics import localpg, store
from pganalytics.collector import frames as frame_format
from pganalytics.collector.batch import SamplesBatch, SeriesLayout
from pganalytics.collector.sink import Sink

GROUP = 200  # Delivery.max_group: batches per delivery transaction
SETTINGS = {"shared_buffers": "4GB", "max_wal_size": "16GB", "checkpoint_timeout": "30min",
            "synchronous_commit": "on", "autovacuum_naptime": "10s"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def series_set(n: int) -> list[tuple[str, dict, str]]:
    """A collector-like series set: per-database and per-table gauges and counters."""
    out: list[tuple[str, dict, str]] = []
    metrics = [("pg_database_xact_commit_total", "counter"), ("pg_database_blks_read_total", "counter"),
               ("pg_database_numbackends", "gauge"), ("pg_table_n_live_tup", "gauge"),
               ("pg_table_seq_scan_total", "counter"), ("pg_table_idx_scan_total", "counter"),
               ("pg_wal_bytes_total", "counter"), ("host_cpu_busy_ratio", "gauge")]
    k = 0
    while len(out) < n:
        metric, kind = metrics[k % len(metrics)]
        out.append((metric, {"datname": f"db{k % 4}", "relname": f"t{k}"}, kind))
        k += 1
    return out


def values_for(series: list, tick: int, rng_seed: int) -> list[float]:
    rng = np.random.default_rng(rng_seed + tick)
    base = rng.normal(100.0, 5.0, len(series))
    return [float(tick * 10 + i) if kind == "counter" else float(v)
            for i, ((_, _, kind), v) in enumerate(zip(series, base))]


def start_time(seconds: int) -> datetime:
    # Sample time ends well before now: maintain() rolls by the instances' own clocks, and the
    # store refuses batches stamped more than a day ahead of its clock.
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds + 3600)).replace(second=0, microsecond=0)


def register(dsn: str, names: list[str], series: list, t0: datetime) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance(n, 'service=' || n) FROM unnest(%s::text[]) AS n",
                     (names,))


def deliver_stream(dsn: str, names: list[str], series: list, seconds: int, interval: float,
                   t0: datetime, done: mp.Queue, start) -> None:
    """One delivery process: every tick, a snapshot of each of its instances, in groups. It
    first delivers one warm-up snapshot (2 min before the run) so its connection knows its
    series and layouts, as a running collector's does, then waits for the start."""
    variants = [values_for(series, v, 7) for v in range(4)]
    templates = [[(m, lab, k, 0.0) for m, lab, k in series]]
    stored = 0
    with psycopg.connect(dsn) as conn:
        sink = Sink(conn)
        warm = [(m, lab, k, 0.0) for m, lab, k in series]
        for i in range(0, len(names), GROUP):
            with sink.transaction():
                sink.deliver_group([SamplesBatch(n, "host", t0 - timedelta(minutes=2), warm)
                                    for n in names[i:i + GROUP]])
        start.wait()  # a barrier: every stream warm, then the clock starts
        ticks = int(seconds / interval)
        pending: list[SamplesBatch] = []
        for tick in range(ticks):
            at = t0 + timedelta(seconds=tick * interval)
            vals = variants[tick % 4]
            samples = [(m, lab, k, v) for (m, lab, k, _), v in zip(templates[0], vals)]
            layout = SeriesLayout.of(samples)
            for name in names:
                batch = SamplesBatch(name, "host", at, samples)
                # what the collector's worker thread does when it reads a source (snapshot.py)
                batch.__dict__["_layout"] = layout
                pending.append(batch)
                if len(pending) == GROUP:
                    with sink.transaction():
                        stored += sink.deliver_group(pending)
                    pending = []
        if pending:
            with sink.transaction():
                stored += sink.deliver_group(pending)
    done.put(stored)


def timed_copy(dsn: str, table: str, columns: str, payload: bytes) -> tuple[float, int]:
    """Seconds to binary-COPY `payload` into a new UNLOGGED heap without index, and its rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}; CREATE UNLOGGED TABLE {table} ({columns}) "
                     "WITH (toast_tuple_target = 8160)")
        with conn.cursor() as cur:
            started = time.perf_counter()
            with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                step = 8 << 20
                for i in range(0, len(payload), step):
                    copy.write(payload[i:i + step])
            elapsed = time.perf_counter() - started
        rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn.execute(f"DROP TABLE {table}")
    return elapsed, rows


def ceiling(dsn: str, names: list[str], series: list, samples: int) -> float:
    """Binary COPY of `samples` rows (instance_id, series_id, ts, value) into an UNLOGGED heap."""
    n = samples
    rows = np.zeros(n, dtype=[("nf", ">i2"), ("l1", ">i4"), ("iid", ">i4"), ("l2", ">i4"), ("sid", ">i4"),
                              ("l3", ">i4"), ("ts", ">i8"), ("l4", ">i4"), ("v", ">f8")])
    rows["nf"], rows["l1"], rows["l2"], rows["l3"], rows["l4"] = 4, 4, 4, 8, 8
    per = len(series)
    rows["iid"] = 1 + (np.arange(n) // per) % len(names)
    rows["sid"] = 1 + np.arange(n) % per
    rows["ts"] = 800_000_000_000_000 + (np.arange(n) // (per * len(names))) * 1_000_000
    rows["v"] = np.random.default_rng(1).normal(100, 5, n)
    payload = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rows.tobytes() + struct.pack(">h", -1)
    elapsed, got = timed_copy(dsn, "ceiling", "instance_id int, series_id int, ts timestamptz, value float8", payload)
    assert got == n
    return n / elapsed


def frames_ceiling(dsn: str, series: list, frames: int) -> float:
    """For comparison: binary COPY of the product's own staging rows (batch_no, instance_id,
    collected_at, layout_id, vals) into an UNLOGGED heap with no index, in samples/s."""
    vals = frame_format.float8_values([float(i) for i in range(len(series))])
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    payload = b"".join([frame_format.SIGNATURE,
                        *(frame_format.frame_row(i, 1 + i % 1000, at, 1, vals) for i in range(frames)),
                        frame_format.TRAILER])
    elapsed, got = timed_copy(dsn, "ceiling_frames",
                              "batch_no int, instance_id int, collected_at timestamptz, layout_id int, vals bytea", payload)
    assert got == frames
    return frames * len(series) / elapsed


class Reader(threading.Thread):
    """read_series() of one series over the run's sample time, every 0.5 s while it runs."""

    def __init__(self, dsn: str, instance: str, metric: str, t0: datetime, seconds: int):
        super().__init__(daemon=True)
        self.args = (instance, metric, t0, t0 + timedelta(seconds=seconds))
        self.dsn, self.latencies, self.stop = dsn, [], threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.5):
                started = time.perf_counter()
                conn.execute("SELECT count(*) FROM pganalytics.read_series(%s, %s, %s, %s, 'auto', "
                             "'{\"relname\": \"t0\"}')", self.args).fetchone()
                self.latencies.append(time.perf_counter() - started)

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        if not lat:
            return {}
        return {"reads": len(lat), "median_ms": round(statistics.median(lat) * 1000, 1),
                "p95_ms": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1)}


def run_product(dsn: str, names: list[str], series: list, seconds: int, interval: float, streams: int) -> dict:
    t0 = start_time(seconds)  # the same minute as register()'s, computed again moments later
    expected = len(names) * len(series) * int(seconds / interval)
    ctx = mp.get_context("fork")
    done: mp.Queue = ctx.Queue()
    parts = [names[i::streams] for i in range(streams)]
    with psycopg.connect(dsn, autocommit=True) as m:
        runs = 0
        start = ctx.Barrier(streams + 1)
        procs = [ctx.Process(target=deliver_stream, args=(dsn, p, series, seconds, interval, t0, done, start))
                 for p in parts]
        for p in procs:
            p.start()
        m.execute("SELECT pganalytics.maintain()")  # rolls nothing yet: the warm-up minute is not complete
        start.wait()
        started = time.perf_counter()
        reader = Reader(dsn, names[0], series[0][0], t0, seconds)
        reader.start()
        maintain_s = 0.0
        while any(p.is_alive() for p in procs):
            a = time.perf_counter()
            m.execute("SELECT pganalytics.maintain()")
            maintain_s += time.perf_counter() - a
            runs += 1
            time.sleep(0.2)
        for p in procs:
            p.join()
        delivered_at = time.perf_counter() - started
        reader.stop.set()
        reader.join()
        while True:  # roll up what the last deliveries completed
            a = time.perf_counter()
            summary = m.execute("SELECT pganalytics.maintain()").fetchone()[0]
            maintain_s += time.perf_counter() - a
            runs += 1
            if not summary.get("behind") and summary.get("instance_minutes", 0) == 0:
                break
        elapsed = time.perf_counter() - started
        stored = sum(done.get() for _ in procs)
        frames = m.execute("SELECT count(*), sum(octet_length(vals) / 8) FROM pganalytics.sample_frames "
                           "WHERE ts >= %s", (t0,)).fetchone()
        complete_minutes = int((seconds - interval - 60) // 60)  # the newest wait for rollup.settle (1 min)
        rolled = m.execute("SELECT sum(n) FROM pganalytics.rollups_1m WHERE bucket >= %s AND bucket < %s",
                           (t0, t0 + timedelta(minutes=complete_minutes))).fetchone()[0]
    log(f"{streams} stream(s): {expected} samples in {elapsed:.1f} s (delivered after {delivered_at:.1f} s)")
    per_minute = len(names) * len(series) * int(60 / interval)
    assert stored == expected == frames[1], (stored, expected, frames)
    assert rolled == per_minute * complete_minutes, (rolled, per_minute * complete_minutes)
    return {"streams": streams, "samples": expected, "seconds": round(elapsed, 2),
            "delivered_after_s": round(delivered_at, 2), "samples_per_s": round(expected / elapsed),
            "maintain_calls": runs, "maintain_busy_s": round(maintain_s, 2),
            "read_series_during_ingest": reader.summary(),
            "checked": "every sample stored once; rollups_1m count every sample of each complete minute"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--series", type=int, default=250)
    ap.add_argument("--seconds", type=int, default=300, help="sample time simulated per run")
    ap.add_argument("--interval-s", type=float, default=1.0)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--pg-bindir")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "store-ingest.json"))
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pganalytics-ingest-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    results: dict = {"instances": args.instances, "series_per_instance": args.series,
                     "interval_s": args.interval_s, "sample_seconds": args.seconds, "runs": []}
    try:
        cluster.init(SETTINGS)
        cluster.start()
        names = [f"i{k:05d}" for k in range(args.instances)]
        series = series_set(args.series)
        for streams in args.streams:
            with psycopg.connect(cluster.dsn, autocommit=True) as c:
                c.execute("DROP DATABASE IF EXISTS bench")
                c.execute("CREATE DATABASE bench")
            dsn = cluster.dsn_for("bench")
            store.upgrade(dsn)
            register(dsn, names, series, start_time(args.seconds))
            samples = args.instances * args.series * 40
            ceil = max(ceiling(dsn, names, series, samples) for _ in range(2))
            log(f"ceiling: {ceil / 1e6:.2f} M samples/s")
            run = run_product(dsn, names, series, args.seconds, args.interval_s, streams)
            run["ceiling_samples_per_s"] = round(ceil)
            run["ratio"] = round(run["samples_per_s"] / ceil, 3)
            run["frames_copy_samples_per_s"] = round(frames_ceiling(dsn, series, args.instances * 40))
            log(f"{streams} stream(s): {run['samples_per_s'] / 1e6:.2f} M samples/s "
                f"= {run['ratio']:.2f} x ceiling ({run})")
            results["runs"].append(run)
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
