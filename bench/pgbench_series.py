"""Hourly PostgreSQL metrics under a pgbench load with a daily and weekly profile, in compressed time.

    .venv/bin/python bench/pgbench_series.py [--weeks 5] [--warp 3600] [--seed 0] [--out bench/data/pgbench]

Runtime: weeks x 168 real seconds plus under a minute of set-up (the committed data, --weeks 4:
11.3 minutes; 5 weeks: about 15).
It needs PostgreSQL's binaries (pgbench, initdb: localpg.find_bindir()) and two free cores: the
load is real and other CPU-heavy work on the machine shows up in the series.

A fresh target server (a pgbench database of scale 10, bench/anomaly_injection.py's settings)
and a fresh store; the real collector (collector/daemon.py) reads the target every real second,
and each batch's collected_at is rewritten on its way to delivery (anomaly_injection.Warp) so
that one real second is stored as one hour (--warp 3600): a poll per stored hour. The stored
timeline starts on a Monday 00:00 UTC and ends a day before the store's clock.

The load follows the warped clock. Every real second (one stored hour, h) a new
`pgbench -R rate -T 1` runs with
    rate = base x growth(h) x (1 + peak x business(hour of day) x weekend(day)) x noise
- business: a raised cosine over 08-20 h (lunchtime peak); weekends (Sat, Sun) keep 30 % of it;
- growth: +30 % over the run (a workload slowly getting bigger);
- noise: log-normal AR(1) (sd 0.12, phi 0.6), and the client count follows the rate (2..8);
- a nightly batch 02-04 h every day: select-only pgbench (-S) and sequential scans of
  pgbench_accounts (four times shared_buffers: reads, tuples returned, CPU).
Rates in the stored series are the real counts per stored second (so 3,600 times lower than
the real rate): the forecaster is scale-free, the shape is what matters.

Afterwards each metric of METRICS is read back with pganalytics.read_series(instance, metric,
from, to, '1h') (counters as per-second rates, gauges as hourly means; pg_database_* for the
bench database only, others summed over their series), an hour missing (a poll late by a
whole second) is interpolated from its neighbours, and each series is written as
`<out>/<metric>.csv` (ts,value; ts in ISO 8601 UTC) for bench/forecast_accuracy.py's group
"pgbench". Servers are stopped by pg_ctl (LocalCluster.destroy()).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from anomaly_injection import TARGET_SETTINGS, Warp, prepare_target, start_cluster  # noqa: E402

from pganalytics import localpg, store  # noqa: E402
from pganalytics.collector import config as cfg  # noqa: E402
from pganalytics.collector.daemon import Collector  # noqa: E402

OUT = ROOT / "bench" / "data" / "pgbench"
METRICS = {  # metric -> labels to pick (None: all series, summed)
    "pg_database_xact_commit": {"datname": "bench"},
    "pg_database_tup_fetched": {"datname": "bench"},
    "pg_database_tup_returned": {"datname": "bench"},
    "pg_database_blks_hit": {"datname": "bench"},
    "pg_database_tup_updated": {"datname": "bench"},
    "pg_database_numbackends": {"datname": "bench"},
    "pg_wal_wal_bytes": None,
    "host_cpu_busy_ratio": None,
}


def business(hod: float) -> float:
    return 0.5 - 0.5 * math.cos(2 * math.pi * (hod - 8) / 12) if 8 <= hod <= 20 else 0.0


class Load:
    """pgbench processes following the warped clock: one per real second (stored hour)."""

    def __init__(self, target: localpg.LocalCluster, hours: int, seed: int):
        self.target, self.hours = target, hours
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.procs: list[subprocess.Popen] = []
        self.plan: list[dict] = []

    def pgbench(self, *args: str) -> subprocess.Popen:
        cmd = [str(self.target.bindir / "pgbench"), "-n", "-h", "127.0.0.1", "-p", str(self.target.port),
               "-U", localpg.PG_USER, *args, "bench"]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scan(self, until: float) -> None:
        with psycopg.connect(self.target.dsn_for("bench"), autocommit=True) as conn:
            while time.monotonic() < until and not self.stopping.is_set():
                conn.execute("SELECT count(*) FROM pgbench_accounts WHERE abalance <> 0")
                time.sleep(0.25)

    def run(self, t0: float) -> None:
        noise = 0.0
        for h in range(self.hours):
            wait = t0 + h - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                return
            if self.stopping.is_set():
                return
            hod, dow = h % 24, (h // 24) % 7
            noise = 0.6 * noise + self.rng.gauss(0, 0.12 * math.sqrt(1 - 0.36))
            weekend = 0.3 if dow >= 5 else 1.0
            rate = 12.0 * (1 + 0.3 * h / self.hours) * (1 + 9.0 * business(hod + 0.5) * weekend) * math.exp(noise)
            clients = max(2, min(8, round(rate / 20)))
            self.plan.append({"hour": h, "rate": round(rate, 2), "clients": clients})
            self.procs = [p for p in self.procs if p.poll() is None]
            self.procs.append(self.pgbench("-c", str(clients), "-j", "2", "-R", f"{rate:.1f}", "-T", "1"))
            if 2 <= hod < 4:  # the nightly batch
                self.procs.append(self.pgbench("-S", "-c", "2", "-j", "1", "-R", "150", "-T", "1"))
                threading.Thread(target=self.scan, args=(time.monotonic() + 0.9,), daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait()


def monday_before(t: datetime) -> datetime:
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def read_back(dsn: str, start: datetime, hours: int, out: Path) -> dict:
    end = start + timedelta(hours=hours)
    grid = [start + timedelta(hours=k) for k in range(hours)]
    summary = {}
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for metric, labels in METRICS.items():
            try:
                rows = conn.execute("SELECT ts, sum(value) FROM pganalytics.read_series('bench', %s, %s, %s, '1h', %s)"
                                    " WHERE value IS NOT NULL GROUP BY ts ORDER BY ts",
                                    (metric, start, end, json.dumps(labels) if labels else None)).fetchall()
            except psycopg.Error as exc:
                print(f"  {metric}: {exc}".strip(), flush=True)
                continue
            have = {ts: float(v) for ts, v in rows}
            known = [k for k, ts in enumerate(grid) if ts in have]
            if len(known) < hours // 2:
                print(f"  {metric}: only {len(known)} of {hours} hours: skipped", flush=True)
                continue
            # the first hour of a counter has no rate; an hour without a poll: interpolated
            first, last = known[0], known[-1]
            values = []
            for k in range(first, last + 1):
                if grid[k] in have:
                    values.append(have[grid[k]])
                else:
                    a = max(j for j in known if j < k)
                    b = min(j for j in known if j > k)
                    va, vb = have[grid[a]], have[grid[b]]
                    values.append(va + (vb - va) * (k - a) / (b - a))
            with open(out / f"{metric}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["ts", "value"])
                for k, v in zip(range(first, last + 1), values):
                    w.writerow([grid[k].strftime("%Y-%m-%dT%H:%M:%SZ"), f"{v:.6g}"])
            summary[metric] = {"hours": len(values), "interpolated": len(values) - len(known)}
            print(f"  {metric}: {len(values)} hours, {len(values) - len(known)} interpolated", flush=True)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weeks", type=float, default=5)
    ap.add_argument("--warp", type=float, default=3600, help="stored seconds per real second")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    hours = int(args.weeks * 168)
    step_s = 3600.0 / args.warp  # real seconds per stored hour
    base = Path(tempfile.mkdtemp(prefix="pganalytics-pgbench-series-"))
    target = start_cluster(base, "target", TARGET_SETTINGS)
    store_pg = start_cluster(base, "store")
    collector = load = None
    began = time.monotonic()
    try:
        target_dsn = prepare_target(target)
        store.upgrade(store_pg.dsn)
        with psycopg.connect(store_pg.dsn, autocommit=True) as conn:
            # maintain() is off (nothing is dropped, read_series builds hours from raw frames);
            # this only keeps the frames should someone run it
            conn.execute("UPDATE pganalytics.store_settings SET value = '400 days' WHERE name = 'retention.raw'")
        config = cfg.parse({
            "store": {"dsn": store_pg.dsn},
            "collector": {"interval_s": step_s, "slow_interval_s": 5 * step_s, "sample_interval_s": 0,
                          "maintain_interval_s": 0, "spool_dir": str(base / "spool"), "workers": 2},
            "targets": [{"name": "bench", "conn": target_dsn}],
        })
        collector = Collector(config)
        now = datetime.now(timezone.utc)
        stored_start = monday_before(now - timedelta(days=1) - timedelta(hours=hours))
        # the stored clock runs at --warp from stored_start; the load's hour h is real second h * step_s
        warp = Warp(now, stored_start, args.warp)
        t0 = time.monotonic()
        put = collector.delivery.put

        def warped_put(batches: list) -> None:
            for b in batches:
                b.collected_at = warp(b.collected_at)
            put(batches)

        collector.delivery.put = warped_put  # type: ignore[method-assign]
        load = Load(target, hours, args.seed)
        if step_s != 1.0:
            raise SystemExit("--warp must be 3600 (the load changes every real second = one stored hour)")
        driver = threading.Thread(target=load.run, args=(t0,), daemon=True)
        daemon = threading.Thread(target=collector.run, daemon=True)
        daemon.start()
        driver.start()
        print(f"collecting {hours} stored hours from {stored_start:%Y-%m-%d %H:%M} UTC "
              f"({hours * step_s / 60:.1f} real minutes)", flush=True)
        while driver.is_alive():
            driver.join(timeout=60)
            print(f"  {time.monotonic() - t0:.0f} s", flush=True)
        time.sleep(2 * step_s)
        load.stop()
        collector.request_stop()
        daemon.join(timeout=120)
        summary = read_back(store_pg.dsn, stored_start, hours, args.out)
        (args.out / "README.md").write_text(
            "Hourly series written by bench/pgbench_series.py (see its docstring); read by\n"
            "bench/forecast_accuracy.py as group \"pgbench\".\n\n"
            f"    .venv/bin/python bench/pgbench_series.py --weeks {args.weeks:g} --seed {args.seed}\n\n"
            f"Collected {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in "
            f"{(time.monotonic() - began) / 60:.1f} minutes; PostgreSQL {target.version_num()}.\n\n"
            + "".join(f"- {m}: {s['hours']} hours, {s['interpolated']} interpolated\n" for m, s in summary.items()))
    finally:
        if load is not None:
            load.stop()
        if collector is not None:
            collector.request_stop()
        target.destroy()
        store_pg.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
