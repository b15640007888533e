"""Injected causes under pgbench, collected by the real collector, diagnosed by diagnose().

    .venv/bin/python bench/root_cause_lab.py --seeds 1 [--faults missing_index ...] [--keep DIR]
    .venv/bin/python bench/root_cause_lab.py --rescore DIR [DIR ...]   # re-diagnose kept runs
    .venv/bin/python bench/root_cause_lab.py --seeds 8 --faults lock_contention --severity 0

One seed = one target server (PostgreSQL of the machine, a streaming standby of it, a pgbench
database plus three tables the faults need) and one store, with the real collector daemon
(every source, wait-event and lock sampling; a pg_monitor + pg_read_all_data role) polling
every second (slow sources every 2 s) for the whole seed. The load is pgbench with seeded
scale, clients, rate and script mix, every client reconnecting per transaction (-C) so a
setting changed for its role reaches it at once:
    tpcb-like           updates of accounts/tellers/branches, inserts into history
    point               SELECT from orders by customer (an index on customer)
    report              a sort of many rows of pgbench_accounts (spills at a small work_mem)
    tasks               tasks with status 1 joined to pgbench_accounts (statistics say none)
Faults, one at a time in a seeded order, each for --fault-s (seeded +-20 %) after --gap-s of
plain load (at least the 60 s diagnose() compares a window with), all reverted after:
    missing_index           DROP INDEX orders_customer
    lock_contention         a session holding EXCLUSIVE on pgbench_tellers (or branches) for
                            60-90 % of every second
    work_mem_spill          ALTER ROLE bench SET work_mem = 64-256 kB
    stale_statistics        30-60 % of tasks set to status 1, autovacuum off on tasks
    suboptimal_plan         ALTER ROLE bench SET enable_indexscan/enable_bitmapscan = off
    plan_regression         ALTER SYSTEM SET random_page_cost = 400-1000 (plans change for all)
    bloat_long_transaction  a REPEATABLE READ transaction idle after its first read
    connection_saturation   idle sessions up to 85-95 % of the usable connections
    cpu_saturation          2-4 sessions of CPU-bound arithmetic
    io_cache_eviction       sessions reading large index ranges of a table 4x shared_buffers
    memory_pressure         a process holding 45-65 % of MemAvailable
    checkpoint_pressure     ALTER SYSTEM SET max_wal_size = 32MB and a burst of inserts
    replication_lag         replay paused on the standby while the load writes
and --controls windows with no fault. diagnose(instance, fault start, fault end) then ranks
causes: top-1 is right when causes[0] is the injected cause, top-2 when it is in the first two;
a control is a false cause when any cause reaches confidence 0.5. Writes
bench/results/root-cause-lab.json (every window's diagnosis) and prints a table.
--keep DIR keeps the store's data directory and the windows (runs.json), so --rescore can
diagnose them again with the current SQL (tune on some seeds, judge on the others).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from pganalytics import localpg, store
from pganalytics.collector import config as cfg
from pganalytics.collector.daemon import Collector

FAULTS = ("missing_index", "lock_contention", "work_mem_spill", "stale_statistics", "suboptimal_plan",
          "plan_regression", "bloat_long_transaction", "connection_saturation", "cpu_saturation",
          "io_cache_eviction", "memory_pressure", "checkpoint_pressure", "replication_lag")
RESULTS = Path(__file__).resolve().parent / "results" / "root-cause-lab.json"
TARGET_SETTINGS = {"shared_buffers": "'128MB'", "max_connections": "100", "track_io_timing": "on",
                   "autovacuum_naptime": "'10s'", "wal_level": "replica", "max_wal_senders": "4",
                   "hot_standby": "on"}
SCRIPTS = {
    "point": "\\set c random(1, 20000)\nSELECT count(*), sum(amount) FROM orders WHERE customer = :c;\n",
    # a whole sort of 20,000 rows (~2 MB): in memory at the default work_mem, on disk below it
    "report": ("\\set a random(1, 280000)\n"
               "SELECT count(*), max(f) FROM (SELECT aid, filler AS f FROM pgbench_accounts "
               "WHERE aid BETWEEN :a AND :a + 20000 ORDER BY filler DESC, abalance OFFSET 0) s;\n"),
    "tasks": ("SELECT count(*), sum(a.abalance) FROM tasks t JOIN pgbench_accounts a ON a.aid = t.id "
              "WHERE t.status = 1;\n"),
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def sql(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


class Fault:
    """One injected cause: start() makes it happen, stop() undoes it completely."""

    def __init__(self, kind: str, rng: random.Random, lab: Lab):
        self.kind, self.rng, self.lab = kind, rng, lab
        self.severity = rng.random()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.procs: list[subprocess.Popen] = []
        self.conns: list[psycopg.Connection] = []
        self.params: dict = {}

    def _thread(self, target, *args) -> None:
        th = threading.Thread(target=target, args=args, daemon=True)
        th.start()
        self.threads.append(th)

    def _loop(self, statement: str, pause_s: float = 0.0) -> None:
        with psycopg.connect(self.lab.bench_dsn, autocommit=True) as conn:
            while not self.stopping.is_set():
                conn.execute(statement)
                if pause_s:
                    self.stopping.wait(pause_s)

    def _hold_lock(self, table: str, hold_s: float) -> None:
        with psycopg.connect(self.lab.bench_dsn) as conn:
            while not self.stopping.is_set():
                conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                self.stopping.wait(hold_s)
                conn.commit()
                time.sleep(1.0 - hold_s)

    def start(self) -> None:
        getattr(self, f"_start_{self.kind}")()

    def stop(self) -> None:
        self.stopping.set()
        for th in self.threads:
            th.join(timeout=60)
        for p in self.procs:
            p.terminate()
            p.wait()
        for c in self.conns:
            c.close()
        undo = getattr(self, f"_stop_{self.kind}", None)
        if undo:
            undo()

    # -- the faults --------------------------------------------------------------------------
    def _start_missing_index(self):
        sql(self.lab.bench_dsn, "DROP INDEX orders_customer")

    def _stop_missing_index(self):
        sql(self.lab.bench_dsn, "CREATE INDEX orders_customer ON orders (customer)")

    def _start_lock_contention(self):
        table = self.rng.choice(["pgbench_tellers", "pgbench_branches"])
        self.params = {"table": table, "hold_s": round(0.6 + 0.3 * self.severity, 2)}
        self._thread(self._hold_lock, table, self.params["hold_s"])

    def _start_work_mem_spill(self):
        self.params = {"work_mem": self.rng.choice(["64kB", "128kB", "256kB"])}
        sql(self.lab.bench_dsn, f"ALTER ROLE bench SET work_mem = '{self.params['work_mem']}'")

    def _stop_work_mem_spill(self):
        sql(self.lab.bench_dsn, "ALTER ROLE bench RESET work_mem")

    def _start_stale_statistics(self):
        share = 0.3 + 0.3 * self.severity
        self.params = {"share": round(share, 2)}
        sql(self.lab.bench_dsn, f"UPDATE tasks SET status = 1 WHERE id <= {int(self.lab.tasks * share)}")

    def _stop_stale_statistics(self):
        sql(self.lab.bench_dsn, "UPDATE tasks SET status = 0 WHERE status = 1", "ANALYZE tasks")

    def _start_suboptimal_plan(self):
        flips = ["enable_indexscan", "enable_bitmapscan"] + (["enable_indexonlyscan"] if self.severity > 0.5 else [])
        self.params = {"off": flips}
        sql(self.lab.bench_dsn, *[f"ALTER ROLE bench SET {f} = off" for f in flips])

    def _stop_suboptimal_plan(self):
        sql(self.lab.bench_dsn, *[f"ALTER ROLE bench RESET {f}" for f in self.params["off"]])

    def _start_plan_regression(self):
        # high enough that orders' index (20 rows a customer) costs more than a scan of orders
        self.params = {"random_page_cost": int(400 + 600 * self.severity)}
        sql(self.lab.admin_dsn, f"ALTER SYSTEM SET random_page_cost = {self.params['random_page_cost']}",
            "SELECT pg_reload_conf()")

    def _stop_plan_regression(self):
        sql(self.lab.admin_dsn, "ALTER SYSTEM RESET random_page_cost", "SELECT pg_reload_conf()")

    def _start_bloat_long_transaction(self):
        conn = psycopg.connect(self.lab.bench_dsn)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT count(*) FROM pgbench_branches")
        self.conns.append(conn)  # idle in transaction until stop() closes it

    def _start_connection_saturation(self):
        with psycopg.connect(self.lab.admin_dsn, autocommit=True) as conn:
            used = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()[0]
        want = int(self.lab.usable * (0.85 + 0.10 * self.severity))
        # leave room for pgbench's reconnecting clients and the collector: a refused client aborts pgbench
        want = min(want, self.lab.usable - self.lab.clients - 6)
        self.params = {"target_connections": want}
        self.conns = [psycopg.connect(self.lab.bench_dsn, autocommit=True) for _ in range(max(want - used, 1))]

    def _start_cpu_saturation(self):
        n = 2 + round(2 * self.severity)
        self.params = {"sessions": n}
        for _ in range(n):
            self._thread(self._loop, "SELECT sum(sqrt(g::float8)) FROM (SELECT generate_series(1, 3000000) AS g) s")

    def _start_io_cache_eviction(self):
        n = 1 + round(self.severity)
        self.params = {"sessions": n}
        for _ in range(n):
            span = self.lab.archive_rows // 4
            self._thread(self._loop, f"SELECT count(*), max(pad) FROM archive WHERE id BETWEEN "
                                     f"(random() * {self.lab.archive_rows - span})::int AND "
                                     f"(random() * {self.lab.archive_rows - span})::int + {span}")

    def _start_memory_pressure(self):
        avail = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemAvailable"))) * 1024
        share = 0.45 + 0.2 * self.severity
        self.params = {"bytes": int(avail * share)}
        hog = ("import sys, time\nb = bytearray(int(sys.argv[1]))\n"
               "for i in range(0, len(b), 4096): b[i] = 1\nprint('ready', flush=True)\ntime.sleep(3600)\n")
        p = subprocess.Popen([sys.executable, "-c", hog, str(self.params["bytes"])], stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout is not None
        p.stdout.readline()  # touched: the memory is in use from here

    def _start_checkpoint_pressure(self):
        sql(self.lab.admin_dsn, "ALTER SYSTEM SET max_wal_size = '32MB'", "SELECT pg_reload_conf()")
        self._thread(self._loop, "INSERT INTO burst SELECT g, repeat('x', 400) FROM generate_series(1, 20000) g", 0.2)

    def _stop_checkpoint_pressure(self):
        sql(self.lab.admin_dsn, "ALTER SYSTEM RESET max_wal_size", "SELECT pg_reload_conf()", "TRUNCATE burst")

    def _start_replication_lag(self):
        sql(self.lab.standby.dsn, "SELECT pg_wal_replay_pause()")
        self._thread(self._loop, "INSERT INTO burst SELECT g, repeat('x', 400) FROM generate_series(1, 20000) g", 0.5)

    def _stop_replication_lag(self):
        sql(self.lab.standby.dsn, "SELECT pg_wal_replay_resume()")
        sql(self.lab.bench_dsn, "TRUNCATE burst")


class Lab:
    """The target (and its standby), the store, the load and the collector of one seed."""

    def __init__(self, seed: int, base: Path, args):
        self.seed, self.base, self.args = seed, base, args
        self.rng = random.Random(seed)
        self.scale = self.rng.choice([3, 4, 5])  # pgbench_accounts 40-65 MB: the hot set fits shared_buffers
        self.clients = self.rng.choice([3, 4, 5])
        self.rate = self.rng.choice([40, 60, 80])
        self.mix = {"tpcb-like": self.rng.choice([3, 4, 5]), "point": self.rng.choice([3, 5]),
                    "report": 1, "tasks": 1}
        self.tasks = 50000
        self.archive_rows = 2_500_000  # ~380 MB with its index: 3x shared_buffers
        self.procs: list[subprocess.Popen] = []
        self.target = self.store_pg = self.standby = None  # type: ignore[assignment]
        self.collector: Collector | None = None

    @property
    def admin_dsn(self) -> str:
        return self.target.dsn_for("bench")

    @property
    def bench_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.target.port} user=bench dbname=bench"

    def start(self) -> None:
        bindir = localpg.find_bindir()
        self.target = localpg.LocalCluster(self.base / "target", localpg.free_port(), bindir)
        self.target.init(TARGET_SETTINGS)
        self.target.start()
        localpg.wait_ready(self.target.dsn)
        self.store_pg = localpg.LocalCluster(self.base / "store", localpg.free_port(), bindir)
        self.store_pg.init()
        self.store_pg.start()
        localpg.wait_ready(self.store_pg.dsn)
        store.upgrade(self.store_pg.dsn)
        sql(self.target.dsn, "CREATE ROLE collector LOGIN IN ROLE pg_monitor, pg_read_all_data",
            "GRANT SET ON PARAMETER pg_stat_statements.track TO collector",
            "CREATE ROLE bench LOGIN", "CREATE DATABASE bench OWNER bench")
        sql(self.admin_dsn, "CREATE EXTENSION pg_stat_statements", "CREATE EXTENSION IF NOT EXISTS hypopg")
        subprocess.run([str(bindir / "pgbench"), "-i", "-q", "-s", str(self.scale), "-h", "127.0.0.1",
                        "-p", str(self.target.port), "-U", "bench", "bench"], check=True, capture_output=True)
        sql(self.bench_dsn,
            "CREATE TABLE orders (id int PRIMARY KEY, customer int, amount numeric)",
            "INSERT INTO orders SELECT g, g % 20000, g % 997 FROM generate_series(1, 400000) g",
            "CREATE INDEX orders_customer ON orders (customer)",
            "CREATE TABLE tasks (id int PRIMARY KEY, status int NOT NULL, note text) WITH (autovacuum_enabled = off)",
            f"INSERT INTO tasks SELECT g, 0, 'done' FROM generate_series(1, {self.tasks}) g",
            "CREATE INDEX tasks_status ON tasks (status)",
            "CREATE TABLE archive (id int, pad text)",
            f"INSERT INTO archive SELECT g, repeat('a', 80) FROM generate_series(1, {self.archive_rows}) g",
            "CREATE INDEX archive_id ON archive (id)",
            "CREATE TABLE burst (k int, pad text)",
            "VACUUM ANALYZE")
        # the standby, for replication lag
        standby_dir = self.base / "standby"
        standby_dir.mkdir(mode=0o700)
        shutil.chown(standby_dir, localpg.PG_USER, localpg.PG_USER)
        localpg._as_server_user([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.target.port),
                                 "-U", localpg.PG_USER, "-D", str(standby_dir), "-R", "-X", "stream", "-c", "fast"])
        self.standby = localpg.LocalCluster(standby_dir, localpg.free_port(), bindir)
        self.standby.start()
        localpg.wait_ready(self.standby.dsn)
        sql(self.admin_dsn, "SELECT pg_stat_statements_reset()", "CHECKPOINT")
        with psycopg.connect(self.target.dsn, autocommit=True) as conn:
            self.usable = conn.execute(
                "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
                " - coalesce(current_setting('reserved_connections', true)::int, 0)").fetchone()[0]

    def start_load(self, seconds: float) -> None:
        args = [str(self.target.bindir / "pgbench"), "-n", "-C", "-c", str(self.clients), "-j", "2",
                "-R", str(self.rate), "-T", str(int(seconds)), "-h", "127.0.0.1", "-p", str(self.target.port),
                "-U", "bench", "-b", f"tpcb-like@{self.mix['tpcb-like']}"]
        for name in ("point", "report", "tasks"):
            path = self.base / f"{name}.sql"
            path.write_text(SCRIPTS[name])
            args += ["-f", f"{path}@{self.mix[name]}"]
        args.append("bench")
        self.pgbench_log = self.base / "pgbench.log"
        self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.pgbench_log, "w")))

    def start_collector(self, instance: str) -> None:
        conf = cfg.parse({
            "store": {"dsn": self.store_pg.dsn},
            "collector": {"interval_s": 1, "slow_interval_s": 2, "sample_interval_s": 1, "maintain_interval_s": 10,
                          "idle_xact_threshold_s": 5, "workers": 2, "spool_dir": str(self.base / "spool"),
                          "exclude_databases": ["postgres"]},
            "targets": [{"name": instance, "conn": f"host=127.0.0.1 port={self.target.port} user=collector dbname=bench"}],
        })
        self.collector = Collector(conf)
        threading.Thread(target=self.collector.run, daemon=True).start()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
        if self.collector is not None:
            self.collector.request_stop()
            time.sleep(3)
        for c in (self.standby, self.target):
            if c is not None:
                c.destroy()
        if self.store_pg is not None:
            if self.args.keep:
                self.store_pg.stop()
            else:
                self.store_pg.destroy()


def run_seed(seed: int, args, base: Path) -> list[dict]:
    lab = Lab(seed, base, args)
    rng = random.Random(seed * 7919)
    kinds = [k for k in (args.faults or FAULTS)] + [None] * args.controls
    rng.shuffle(kinds)
    windows: list[dict] = []
    instance = f"lab-s{seed}"
    try:
        lab.start()
        total = len(kinds) * (args.gap_s + args.fault_s * 1.2 + 10) + 60
        lab.start_load(total)
        lab.start_collector(instance)
        time.sleep(10)
        for kind in kinds:
            time.sleep(args.gap_s)
            hold = args.fault_s * (0.8 + 0.4 * rng.random())
            fault = Fault(kind, random.Random(rng.random()), lab) if kind else None
            if fault and args.severity is not None:
                fault.severity = args.severity  # after the draws: the seed's sequence is kept
            start = now()
            if fault:
                fault.start()
            time.sleep(hold)
            end = now()
            if fault:
                fault.stop()
            windows.append({"seed": seed, "instance": instance, "fault": kind, "from": start.isoformat(),
                            "to": end.isoformat(), "severity": round(fault.severity, 2) if fault else None,
                            "params": fault.params if fault else {}})
            print(f"  seed {seed}: {kind or 'control'} {hold:.0f} s {fault.params if fault else ''}", flush=True)
        time.sleep(4)
        if lab.procs and lab.procs[0].poll() not in (None, 0):
            # said, and kept in the results: windows after it had no load to hurt
            tail = lab.pgbench_log.read_text()[-600:]
            print(f"  seed {seed}: pgbench ended early (exit {lab.procs[0].returncode}): {tail}", flush=True)
            for w in windows:
                w["load_ended_early"] = True
        for w in windows:
            w["diagnosis"] = diagnose(lab.store_pg.dsn, w)
    finally:
        lab.stop()
        if args.keep:
            keep = Path(args.keep) / f"seed{seed}"
            keep.mkdir(parents=True, exist_ok=True)
            if lab.store_pg is not None and (base / "store").exists():
                shutil.rmtree(keep / "store", ignore_errors=True)
                subprocess.run(["cp", "-a", str(base / "store"), str(keep / "store")], check=True)
            (keep / "runs.json").write_text(json.dumps(windows, indent=1, default=str))
        shutil.rmtree(base, ignore_errors=True)
    return windows


def diagnose(dsn: str, w: dict) -> dict:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT pganalytics.diagnose(%s, %s, %s)", (w["instance"], w["from"], w["to"])).fetchone()[0]


def rescore(dirs: list[str]) -> list[dict]:
    windows: list[dict] = []
    for d in dirs:
        keep = Path(d)
        runs = json.loads((keep / "runs.json").read_text())
        work = localpg.reachable_dir(tempfile.mkdtemp(prefix="rc-rescore-"))
        subprocess.run(["cp", "-a", str(keep / "store"), str(work / "store")], check=True)
        subprocess.run(["chown", "-R", localpg.PG_USER, str(work)], check=True)
        os.chmod(work, 0o755)
        cluster = localpg.LocalCluster(work / "store", localpg.free_port(), localpg.find_bindir())
        (work / "store" / "postmaster.pid").unlink(missing_ok=True)
        with open(work / "store" / "postgresql.auto.conf", "a") as fh:
            fh.write("unix_socket_directories = ''\n")  # its old directory is gone: TCP only
        cluster.start()
        try:
            localpg.wait_ready(cluster.dsn)
            store.upgrade(cluster.dsn)
            for w in runs:
                w["diagnosis"] = diagnose(cluster.dsn, w)
            windows += runs
        finally:
            cluster.destroy()
    return windows


def score(windows: list[dict]) -> dict:
    per: dict[str, dict] = {}
    controls = {"windows": 0, "false_cause": 0, "any_cause": 0}
    for w in windows:
        causes = [c["cause"] for c in w["diagnosis"]["causes"]]
        if w["fault"] is None:
            controls["windows"] += 1
            controls["false_cause"] += any(c["confidence"] >= 0.5 for c in w["diagnosis"]["causes"])
            controls["any_cause"] += bool(causes)
            continue
        p = per.setdefault(w["fault"], {"runs": 0, "top1": 0, "top2": 0, "named": []})
        p["runs"] += 1
        p["top1"] += causes[:1] == [w["fault"]]
        p["top2"] += w["fault"] in causes[:2]
        p["named"].append(causes[:2])
    runs = sum(p["runs"] for p in per.values())
    return {"per_cause": per,
            "top1": sum(p["top1"] for p in per.values()) / runs if runs else None,
            "top2": sum(p["top2"] for p in per.values()) / runs if runs else None,
            "runs": runs, "controls": controls,
            "false_cause_rate": controls["false_cause"] / controls["windows"] if controls["windows"] else None}


def report(result: dict) -> None:
    print(f"{'cause':<24} runs top-1 top-2  named (first two)")
    for cause, p in sorted(result["per_cause"].items()):
        print(f"{cause:<24} {p['runs']:>4} {p['top1']:>5} {p['top2']:>5}  {p['named']}")
    c = result["controls"]
    print(f"overall top-1 {result['top1']}, top-2 {result['top2']} over {result['runs']} faults; controls: "
          f"{c['false_cause']} of {c['windows']} with a cause >= 0.5 ({c['any_cause']} with any cause)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--faults", nargs="+", choices=FAULTS)
    ap.add_argument("--controls", type=int, default=2)
    ap.add_argument("--gap-s", type=float, default=62.0, help="plain load before each window (>= 60: the baseline)")
    ap.add_argument("--fault-s", type=float, default=30.0)
    ap.add_argument("--severity", type=float, help="every fault at this severity (0 = mildest, 1 = "
                    "strongest) instead of a seeded one: to probe the weak end while tuning")
    ap.add_argument("--keep", help="keep each seed's store and windows here (for --rescore)")
    ap.add_argument("--rescore", nargs="+", metavar="DIR", help="re-diagnose kept seeds (DIR/seedN)")
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args()
    if args.severity is not None and not 0.0 <= args.severity <= 1.0:
        ap.error(f"--severity must be between 0 and 1, not {args.severity}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally blocks stop every server
    if args.rescore:
        windows = rescore(args.rescore)
    else:
        windows = []
        for seed in args.seeds:
            base = localpg.reachable_dir(tempfile.mkdtemp(prefix=f"rc-lab-{seed}-"))
            windows += run_seed(seed, args, base)
    result = score(windows)
    report(result)
    out = {"command": " ".join(sys.argv), "seeds": sorted({w["seed"] for w in windows}), **result,
           "windows": windows}
    Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
