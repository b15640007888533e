"""Lock waits lead statement latency: correlations() on metrics the real collector gathered from
a real PostgreSQL under pgbench while a session held a lock every so often.

    .venv/bin/python bench/correlation_lock_lead.py [--seeds 1 2] [--minutes 6]

Per seed: a fresh target (pgbench database) and store (bench/anomaly_injection.py's servers),
pgbench at a seeded rate, the collector daemon polling every second in real time (no time
compression: the lag is in seconds), and every 30-60 s a session holding ACCESS EXCLUSIVE on
pgbench_history for a seeded 4-12 s (every pgbench transaction inserts there, so they queue
behind it). Then correlations('bench', ARRAY['lock_waits', 'query_latency', 'query_calls',
'pg_database_xact_commit{datname=bench}'], window) at the collector's cadence (1 s) with lags to
60 s. Expected: lock waits lead latency (a statement's time is counted when it completes, after
the lock is released), query_calls and commits move against them. Prints each seed's pairs and
writes bench/results/correlation-lock-lead.json.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anomaly_injection import prepare_target, start_cluster  # noqa: E402

from pganalytics import localpg, store  # noqa: E402
from pganalytics.collector import config as cfg  # noqa: E402
from pganalytics.collector.daemon import Collector  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "correlation-lock-lead.json"
# A statement's time is counted when it completes: the queue behind a lock shows as one burst of
# slow calls at its release, a spike at the end of the lock waits' plateau. At 1 s the two
# shapes differ (a box and a spike); a coarser grid puts them in the same or the next bucket.
STEPS = ("1 s", "5 s")
METRICS = ["lock_waits", "query_latency", "query_calls", "pg_database_xact_commit{datname=bench}"]


def hold_locks(dsn: str, rng: random.Random, stop: threading.Event, holds: list) -> None:
    with psycopg.connect(dsn) as conn:
        while not stop.wait(rng.uniform(30, 60)):
            hold = rng.uniform(4, 12)
            conn.execute("LOCK TABLE pgbench_history IN ACCESS EXCLUSIVE MODE")
            began = time.time()
            stop.wait(hold)
            conn.commit()
            holds.append((began, time.time() - began))


def run(seed: int, minutes: float, base: Path) -> dict:
    rng = random.Random(seed)
    work = base / f"seed{seed}"
    work.mkdir()
    target = start_cluster(work, "target", {"max_connections": "60"})
    store_pg = start_cluster(work, "store")
    collector = pgbench = None
    stop = threading.Event()
    holds: list = []
    try:
        target_dsn = prepare_target(target)
        store.upgrade(store_pg.dsn)
        collector = Collector(cfg.parse({
            "store": {"dsn": store_pg.dsn},
            "collector": {"interval_s": 1, "slow_interval_s": 30, "sample_interval_s": 1, "maintain_interval_s": 10,
                          "spool_dir": str(work / "spool"), "workers": 2},
            "targets": [{"name": "bench", "conn": target_dsn}]}))
        daemon = threading.Thread(target=collector.run, daemon=True)
        seconds = int(minutes * 60)
        pgbench = subprocess.Popen(
            [str(target.bindir / "pgbench"), "-n", "-c", "4", "-j", "2", "-R", str(rng.randint(60, 150)),
             "-T", str(seconds + 30), "-h", "127.0.0.1", "-p", str(target.port), "-U", localpg.PG_USER, "bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        daemon.start()
        locker = threading.Thread(target=hold_locks, args=(target.dsn_for("bench"), rng, stop, holds), daemon=True)
        locker.start()
        time.sleep(seconds)
        stop.set()
        locker.join(timeout=30)
        collector.request_stop()
        daemon.join(timeout=120)
        pairs = []
        with psycopg.connect(store_pg.dsn, autocommit=True) as conn:
            for step in STEPS:
                cur = conn.execute("SELECT x, y, r, lag, r_at_lag, leader, prepared, significant, insight "
                                   "FROM pganalytics.correlations('bench', %s, %s * interval '1 minute', "
                                   "jsonb_build_object('resolution', 'raw', 'step', %s::text, 'max_lag', '60 s'))",
                                   (METRICS, minutes, step))
                pairs += [dict(zip([d.name for d in cur.description], r), step=step) for r in cur.fetchall()]
    finally:
        stop.set()
        if pgbench is not None and pgbench.poll() is None:
            pgbench.terminate()
            pgbench.wait()
        if collector is not None:
            collector.request_stop()
        target.destroy()
        store_pg.destroy()
    for p in pairs:
        p["lag_s"] = p.pop("lag").total_seconds() if p.get("lag") is not None else None
    return {"seed": seed, "minutes": minutes, "holds_s": [round(h, 1) for _, h in holds], "pairs": pairs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--minutes", type=float, default=6.0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = localpg.reachable_dir(tempfile.mkdtemp(prefix="pga-lead-"))
    out = []
    try:
        for seed in args.seeds:
            res = run(seed, args.minutes, Path(base))
            out.append(res)
            print(f"seed {seed}: {len(res['holds_s'])} lock holds of {res['holds_s']} s")
            for p in (p for p in res["pairs"] if p["x"] == "lock_waits"):
                r = "-" if p["r"] is None else f"{p['r']:+.2f}"
                ra = "-" if p["r_at_lag"] is None else f"{p['r_at_lag']:+.2f}"
                print(f"  step {p['step']:>4}: {p['x']} ~ {p['y']:<40} r {r}  best lag {p['lag_s']} s r {ra}"
                      f"  {'significant' if p['significant'] else ''}  {p['insight'] or ''}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    found = {}
    for step in STEPS:
        found[step] = sum(any(p["x"] == "lock_waits" and p["y"] == "query_latency" and p["step"] == step
                              and p["significant"] and p["r_at_lag"] > 0 and p["lag_s"] >= 0 for p in r["pairs"])
                          for r in out)
        print(f"step {step}: lock_waits with query_latency, significant, lock waits first or together: "
              f"{found[step]} of {len(out)} seeds")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"seeds": out, "found": found}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
