"""Injected faults under pgbench, collected by the real collector, found by the live path.

    .venv/bin/python bench/anomaly_injection.py [--seeds 1 2 3] [--faults lock ...] [--warp 60]

For each seed, six runs, each on a fresh target server (a pgbench database) and a fresh store:
  * five injection runs, one a fault: a pgbench load (seeded rate and clients) for
    --baseline-s plus a seeded 0-30 s, then the fault, held for a seeded 5-10 s at a seeded
    severity, then --tail-s of plain load. One fault a run: incidents are rare against the
    history a detector learns from; five in a few hundred minutes would be its normal.
      lock         a session holds ACCESS EXCLUSIVE on pgbench_history for most of each second
                   (every pgbench transaction inserts there: they queue behind it)
      cache        sessions scanning pgbench_accounts (bigger than a quarter of shared_buffers:
                   every block is a read) in a loop: the buffer hit ratio falls
      connections  idle sessions opened up to 70-97 % of the usable connections
      cpu          sessions running CPU-bound queries (generate_series arithmetic)
      io           `dd oflag=direct,dsync` writers saturating the disk with synchronous writes
  * a control run: as long, with no fault (its goal: no event at all).
The collector is the real daemon (collector/daemon.py: every source, wait-event sampling,
host metrics, the maintainer calling maintain() and so the live path, detect_live()), reading
the target as a pg_monitor-only role. Events are read from pganalytics.anomalies afterwards.

Time is compressed, nothing else: the collector polls every real second and each poll is
stored as one minute later than the one before (--warp 60: the batches' collected_at is
rewritten on their way to delivery, t' = t0' + (t - t0) x 60), so the live path's 100-minute
warm-up takes 100 s and a fault of 6 s is a 6-minute episode at 1-minute resolution.
Rates are 60 times lower than the counters' real rates (deltas over a "minute"), ratios and
per-call times are as they were. A minute holds one poll, where a 10-second collector would
average six: the series are noisier than in production, which makes this harder, not easier.
--warp 1 --interval 10 runs in real time (hours a seed).

Scoring, per injection run: an event counts for a fault when it starts inside the fault's
window (from its start to 5 minutes after its end, stored time) and its type is one the fault
causes (SYMPTOMS: a CPU-heavy query also makes statements slower; a scan that evicts the
cache also burns CPU); every other event, in either run, is a false positive. A fault is
found when its own type (PRIMARY) has an event in its window. Precision = events that count /
all events; recall = faults found / faults; F1 of the two, over all seeds. Prints a table and
writes bench/results/anomaly-injection.json.
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from pganalytics import localpg, store
from pganalytics.collector import config as cfg
from pganalytics.collector.daemon import Collector

RESULTS = Path(__file__).resolve().parent / "results" / "anomaly-injection.json"
FAULTS = ("lock", "cache", "connections", "cpu", "io")
PRIMARY = {"lock": "lock_contention_increase", "cache": "cache_hit_rate_drop",
           "connections": "connection_pool_saturation", "cpu": "high_cpu_usage", "io": "high_io_wait"}
SYMPTOMS = {
    "lock": {"lock_contention_increase", "execution_time_spike"},
    "cache": {"cache_hit_rate_drop", "high_cpu_usage", "high_io_wait", "execution_time_spike"},
    "connections": {"connection_pool_saturation", "high_cpu_usage"},
    "cpu": {"high_cpu_usage", "execution_time_spike"},
    # slow commits hold pgbench's row locks longer: sessions queue behind them
    "io": {"high_io_wait", "execution_time_spike", "lock_contention_increase"},
}
TOLERANCE = timedelta(minutes=5)  # an event may start up to this long after its fault ended
TARGET_SETTINGS = {"shared_buffers": "'32MB'", "max_connections": "60", "track_io_timing": "on"}
PGBENCH_SCALE = 10  # pgbench_accounts ~130 MB: four times shared_buffers


@dataclass
class Fault:
    kind: str
    start_s: float  # offsets from the run's start, real seconds
    end_s: float
    severity: float  # 0..1, what each fault makes of it is in inject()


@dataclass
class Run:
    seed: int
    injected: bool
    faults: list[Fault] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def schedule(seed: int, kind: str | None, baseline_s: float, tail_s: float) -> tuple[list[Fault], dict, float]:
    """One run's load and fault (none for a control run), seeded by the seed and the fault."""
    rng = random.Random(f"{seed}/{kind}")
    load = {"rate": rng.randint(60, 150), "clients": rng.randint(3, 6)}
    start = baseline_s + rng.uniform(0, 30)
    length = rng.uniform(5, 10)
    if kind is None:
        return [], load, baseline_s + 30 + 10 + tail_s
    return [Fault(kind, start, start + length, rng.uniform(0, 1))], load, start + length + tail_s


class Warp:
    """Stored time of a real instant: t0' + (t - t0) x factor."""

    def __init__(self, real_start: datetime, stored_start: datetime, factor: float):
        self.real_start, self.stored_start, self.factor = real_start, stored_start, factor

    def __call__(self, t: datetime) -> datetime:
        return self.stored_start + (t - self.real_start) * self.factor

    def at(self, offset_s: float) -> datetime:
        return self.stored_start + timedelta(seconds=offset_s * self.factor)


class Injection:
    """One fault running in threads (and processes) until stop()."""

    def __init__(self, fault: Fault, dsn: str, scratch: Path, usable: int, baseline_backends: int):
        self.fault, self.dsn, self.scratch = fault, dsn, scratch
        self.usable, self.baseline_backends = usable, baseline_backends
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.procs: list[subprocess.Popen] = []
        self.conns: list[psycopg.Connection] = []

    def _loop(self, sql: str, pause_s: float = 0.0) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stopping.is_set():
                conn.execute(sql)
                if pause_s:
                    self.stopping.wait(pause_s)

    def _hold_lock(self, hold_s: float) -> None:
        with psycopg.connect(self.dsn) as conn:
            while not self.stopping.is_set():
                conn.execute("LOCK TABLE pgbench_history IN ACCESS EXCLUSIVE MODE")
                self.stopping.wait(hold_s)
                conn.commit()
                time.sleep(1.0 - hold_s)

    def _thread(self, target, *args) -> None:
        th = threading.Thread(target=target, args=args, daemon=True)
        th.start()
        self.threads.append(th)

    def start(self) -> None:
        s = self.fault.severity
        kind = self.fault.kind
        if kind == "lock":
            self._thread(self._hold_lock, 0.5 + 0.4 * s)
        elif kind == "cache":
            for _ in range(1 + round(s)):
                self._thread(self._loop, "SELECT count(*) FROM pgbench_accounts", 0.2 * (1 - s))
        elif kind == "connections":
            want = int(self.usable * (0.7 + 0.27 * s)) - self.baseline_backends
            self.conns = [psycopg.connect(self.dsn, autocommit=True) for _ in range(max(want, 1))]
        elif kind == "cpu":
            for _ in range(2 + round(s)):
                self._loop_cpu()
        elif kind == "io":
            for k in range(1 + round(s)):
                out = self.scratch / f"io-stall-{k}"
                self.procs.append(subprocess.Popen(
                    ["dd", "if=/dev/zero", f"of={out}", "bs=8k", "count=100000000", "oflag=direct,dsync"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        else:
            raise ValueError(f"unknown fault {kind}")

    def _loop_cpu(self) -> None:
        # the set-returning function in the select list is not materialised (in FROM it
        # would be, spilling 3 million rows to a temporary file: a temp_spill fault too)
        self._thread(self._loop, "SELECT sum(sqrt(g::float8)) FROM (SELECT generate_series(1, 3000000) AS g) AS s")

    def stop(self) -> None:
        self.stopping.set()
        for p in self.procs:
            p.terminate()
            p.wait()
        for c in self.conns:
            c.close()
        for th in self.threads:
            th.join(timeout=30)
        for f in self.scratch.glob("io-stall-*"):
            f.unlink()


def start_cluster(base: Path, name: str, settings: dict | None = None) -> localpg.LocalCluster:
    cluster = localpg.LocalCluster(base / name, localpg.free_port(), localpg.find_bindir())
    cluster.init(settings)
    cluster.start()
    localpg.wait_ready(cluster.dsn)
    return cluster


def prepare_target(cluster: localpg.LocalCluster) -> str:
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
        conn.execute("CREATE ROLE collector LOGIN IN ROLE pg_monitor")
    with psycopg.connect(cluster.dsn_for("bench"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    pgbench = str(cluster.bindir / "pgbench")
    subprocess.run([pgbench, "-i", "-q", "-s", str(PGBENCH_SCALE), "-h", "127.0.0.1", "-p", str(cluster.port),
                    "-U", localpg.PG_USER, "bench"], check=True, capture_output=True)
    with psycopg.connect(cluster.dsn_for("bench"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        conn.execute("SELECT pg_stat_statements_reset()")
    return f"host=127.0.0.1 port={cluster.port} user=collector dbname=bench"


def run_once(seed: int, kind: str | None, args, base: Path) -> Run:
    faults, load, total_s = schedule(seed, kind, args.baseline_s, args.tail_s)
    run = Run(seed, kind is not None, faults)
    work = base / f"seed{seed}-{kind or 'control'}"
    work.mkdir()
    target = start_cluster(work, "target", TARGET_SETTINGS)
    store_pg = start_cluster(work, "store")
    collector = None
    pgbench = None
    try:
        target_dsn = prepare_target(target)
        store.upgrade(store_pg.dsn)
        config = cfg.parse({
            "store": {"dsn": store_pg.dsn},
            "collector": {"interval_s": args.interval, "slow_interval_s": 5 * args.interval,
                          "sample_interval_s": args.interval, "maintain_interval_s": args.interval,
                          "spool_dir": str(work / "spool"), "workers": 2},
            "targets": [{"name": "bench", "conn": target_dsn}],
        })
        collector = Collector(config)
        # the real clock's origin, both ways: fault offsets are monotonic, batches wall-clock
        t0, now = time.monotonic(), datetime.now(timezone.utc)
        # the stored timeline ends ten minutes before the store's clock: no sample is in its future
        warp = Warp(now, now - timedelta(seconds=(total_s + 60) * args.warp) - timedelta(minutes=10), args.warp)
        put = collector.delivery.put

        def warped_put(batches: list) -> None:
            for b in batches:
                b.collected_at = warp(b.collected_at)
            put(batches)

        collector.delivery.put = warped_put  # type: ignore[method-assign]
        daemon = threading.Thread(target=collector.run, daemon=True)
        pgbench = subprocess.Popen(
            [str(target.bindir / "pgbench"), "-n", "-c", str(load["clients"]), "-j", "2", "-R", str(load["rate"]),
             "-T", str(int(total_s + 30)), "-h", "127.0.0.1", "-p", str(target.port), "-U", localpg.PG_USER, "bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        daemon.start()
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            usable = conn.execute("SELECT current_setting('max_connections')::int"
                                  " - current_setting('superuser_reserved_connections')::int"
                                  " - coalesce(current_setting('reserved_connections', true)::int, 0)").fetchone()[0]
        for fault in run.faults:
            time.sleep(max(0.0, fault.start_s - (time.monotonic() - t0)))
            with psycopg.connect(target.dsn, autocommit=True) as conn:
                backends = conn.execute("SELECT sum(numbackends) FROM pg_stat_database").fetchone()[0]
            inj = Injection(fault, target.dsn_for("bench"), work, usable, int(backends))
            inj.start()
            time.sleep(max(0.0, fault.end_s - (time.monotonic() - t0)))
            inj.stop()
            print(f"  seed {seed}: {fault.kind} {fault.end_s - fault.start_s:.1f} s at severity {fault.severity:.2f}",
                  flush=True)
        time.sleep(max(0.0, total_s - (time.monotonic() - t0)))
        collector.request_stop()
        daemon.join(timeout=120)
        with psycopg.connect(store_pg.dsn, autocommit=True) as conn:
            for _ in range(100):  # the minutes still waiting for maintain()
                if not conn.execute("SELECT pganalytics.maintain() ->> 'behind'").fetchone()[0] == "true":
                    break
            run.events = [dict(zip(("type", "subject", "started_at", "ended_at", "score", "summary"), r)) for r in
                          conn.execute("SELECT anomaly_type, subject, started_at, ended_at, peak_score, description"
                                       " FROM pganalytics.anomalies ORDER BY started_at").fetchall()]
            if args.dump:
                # every derived series of the run with the detector's scores, for a look
                rows = conn.execute(
                    "SELECT i.anomaly_type, i.subject, i.bucket, i.value, s.expected, s.score"
                    " FROM (SELECT anomaly_type, subject, array_agg(bucket ORDER BY bucket) AS ts,"
                    "              array_agg(value ORDER BY bucket) AS vs"
                    "       FROM pganalytics.anomaly_inputs(1, %s, now()) GROUP BY 1, 2) g"
                    " CROSS JOIN LATERAL (SELECT g.anomaly_type, g.subject, u.bucket, u.value, u.k"
                    "     FROM unnest(g.ts, g.vs) WITH ORDINALITY AS u (bucket, value, k)) i"
                    " JOIN LATERAL (SELECT a.expected, a.score, row_number() OVER () AS k"
                    "     FROM pganalytics.anomaly_scores(g.ts, g.vs) a) s ON s.k = i.k"
                    " ORDER BY 1, 2, 3", (warp.stored_start - timedelta(hours=1),)).fetchall()
                with open(Path(args.dump) / f"{work.name}.csv", "w") as fh:
                    fh.write("type,subject,offset_s,value,expected,score\n")
                    for r in rows:
                        off = (r[2] - warp.stored_start).total_seconds() / args.warp
                        fh.write(f"{r[0]},{r[1]},{off:.1f},{r[3]},{r[4]},{r[5]}\n")
            scored = conn.execute("SELECT count(*) FROM pganalytics.anomaly_state_blocks").fetchone()[0]
            if not scored:
                raise RuntimeError("the live path scored nothing: is maintain() running?")
        for ev in run.events:
            ev["started_s"] = (ev["started_at"] - warp.stored_start).total_seconds() / args.warp
    finally:
        if pgbench is not None and pgbench.poll() is None:
            pgbench.terminate()
            pgbench.wait()
        if collector is not None:
            collector.request_stop()
        target.destroy()
        store_pg.destroy()
    return run


def in_window(fault: Fault, at_s: float, warp: float) -> bool:
    """Whether an event starting at at_s (real seconds from the run's start) is in the fault's
    window: from the start of the minute it began in to TOLERANCE after its end (stored time)."""
    return fault.start_s - 60.0 / warp <= at_s <= fault.end_s + TOLERANCE.total_seconds() / warp


def score_runs(runs: list[Run], warp: float) -> dict:
    counted = false_pos = found = faults = 0
    per_fault: dict[str, list[int]] = {k: [0, 0] for k in FAULTS}
    false_events = []
    for run in runs:
        for ev in run.events:
            owner = next((f for f in run.faults if in_window(f, ev["started_s"], warp)
                          and ev["type"] in SYMPTOMS[f.kind]), None)
            if owner is None:
                false_pos += 1
                false_events.append({"seed": run.seed, "injected": run.injected, "type": ev["type"],
                                     "subject": ev["subject"], "at_s": round(ev["started_s"], 1),
                                     "summary": ev["summary"]})
            else:
                counted += 1
        for f in run.faults:
            faults += 1
            per_fault[f.kind][1] += 1
            hit = any(ev["type"] == PRIMARY[f.kind] and in_window(f, ev["started_s"], warp) for ev in run.events)
            found += hit
            per_fault[f.kind][0] += hit
    precision = counted / (counted + false_pos) if counted + false_pos else 1.0
    recall = found / faults if faults else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    control_events = sum(len(r.events) for r in runs if not r.injected)
    return {"precision": precision, "recall": recall, "f1": f1, "events_counted": counted,
            "false_positives": false_pos, "faults": faults, "faults_found": found,
            "control_events": control_events,
            "per_fault": {k: {"found": v[0], "of": v[1]} for k, v in per_fault.items()},
            "false_events": false_events}


def runs_from(path: Path) -> list[Run]:
    """The runs of an earlier results file, to score again (--rescore)."""
    out = []
    for r in json.loads(path.read_text())["runs"]:
        run = Run(r["seed"], r["injected"], [Fault(f["kind"], f["start_s"], f["end_s"], f["severity"]) for f in r["faults"]])
        run.events = [{"type": e["type"], "subject": e["subject"], "started_s": e["at_s"], "score": e["score"],
                       "summary": e.get("summary", "")} for e in r["events"]]
        out.append(run)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--warp", type=float, default=60.0, help="stored seconds per real second")
    ap.add_argument("--interval", type=float, default=1.0, help="the collector's poll interval, real seconds")
    ap.add_argument("--baseline-s", type=float, default=140.0,
                    help="plain load before the fault (plus a seeded 0-30 s)")
    ap.add_argument("--tail-s", type=float, default=25.0, help="plain load after the fault")
    ap.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    ap.add_argument("--dump", help="write each run's derived series and scores to a CSV in this directory")
    ap.add_argument("--no-control", action="store_true", help="skip the runs without injection")
    ap.add_argument("--rescore", type=Path, nargs="+", help="score the runs of earlier results files together "
                    "(same --warp), running nothing")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    began = time.monotonic()
    if args.rescore:
        runs = [run for path in args.rescore for run in runs_from(path)]
        args.seeds = sorted({r.seed for r in runs})
    else:
        if shutil.which("dd") is None:
            print("dd is needed for the io fault", file=sys.stderr)
            return 2
        # SIGTERM ends the run through the finally blocks: no server is left running
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        base = localpg.reachable_dir(tempfile.mkdtemp(prefix="pga-inject-"))
        runs = []
        try:
            for seed in args.seeds:
                for kind in args.faults + ([] if args.no_control else [None]):
                    run = run_once(seed, kind, args, Path(base))
                    runs.append(run)
                    print(f"seed {seed} {kind or 'control'}: {len(run.events)} events: "
                          + ", ".join(f"{e['type']}@{e['started_s']:.0f}s" for e in run.events), flush=True)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    result = score_runs(runs, args.warp)
    result.update({"seeds": args.seeds, "warp": args.warp, "interval_s": args.interval,
                   "baseline_s": args.baseline_s, "tail_s": args.tail_s,
                   "wall_s": round(time.monotonic() - began),
                   "runs": [{"seed": r.seed, "injected": r.injected,
                             "faults": [{"kind": f.kind, "start_s": round(f.start_s, 1), "end_s": round(f.end_s, 1),
                                         "severity": round(f.severity, 2)} for f in r.faults],
                             "events": [{"type": e["type"], "subject": e["subject"], "at_s": round(e["started_s"], 1),
                                         "score": e["score"], "summary": e["summary"]} for e in r.events]}
                            for r in runs]})
    print(f"\nfaults found {result['faults_found']}/{result['faults']}  "
          + "  ".join(f"{k} {v['found']}/{v['of']}" for k, v in result["per_fault"].items()))
    print(f"events counted {result['events_counted']}, false positives {result['false_positives']} "
          f"(control runs: {result['control_events']} events)")
    print(f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  F1 {result['f1']:.3f}")
    for ev in result["false_events"]:
        print(f"  false: seed {ev['seed']} {'injected' if ev['injected'] else 'control'} {ev['type']} "
              f"{ev['subject']} at {ev['at_s']} s: {ev['summary']}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
