"""How many targets one collector process sustains at a 60 s cadence on this machine.

    .venv/bin/python bench/collector_scale.py [--targets 1000] [--duration-s 200] [--interval-s 60]
        [--workers 16] [--servers 2] [--sample-interval-s S] [--pg-bindir DIR] [--tag TAG]
        [--target-nice 10] [--py-spy FILE [--py-spy-gil]] [--switch-interval-s S]

Starts K throwaway target clusters and one store cluster (loopback only) and simulates N
targets as N databases spread round-robin over the K clusters, each built from a template
with a few tables (rows, indexes, non-zero table statistics); pg_stat_statements of each
cluster holds --pgss-entries statements of one application database. Then runs the real daemon
(pganalytics.collector.daemon.Collector) in a thread, configured with the N targets, fast and
slow cadence both at --interval-s (wait-event sampling at the product's default unless
--sample-interval-s), and samples every second: the process's CPU (getrusage RUSAGE_SELF: the
bench runs in the same process and keeps its own work tiny), the delivery queue, the spool,
batches queued and delivered, cycles and wait-sampling ticks done. A subclass records each
cycle's scheduling lag (start minus the time it became due) and times the delivery thread;
the product's code is not changed, except by the simulation adjustments below. Writes bench/results/collector-scale-N[-TAG].json.

Simulation adjustments (a database on a shared server is not a server):
- The monitoring role's own statements are not tracked by pg_stat_statements on the target
  clusters (ALTER ROLE ... SET pg_stat_statements.track = none). Entries are keyed by
  database, so the collector's ~20 statements run in 500 databases would otherwise add
  ~10,000 entries to one cluster and every simulated target would read them all, where a real
  target holds ~20 of them.
- pg_stat_database and pg_database_size are instance-wide: each simulated target would read a
  row for every other simulated database on its cluster (500 rows x 23 counters per cycle, and
  500 directory walks). The bench narrows those two sources to what a one-application server
  has (its own database, the application database, postgres, template0/1).
  --instance-wide-db-views turns this off.
- pg_stat_activity is instance-wide too, and the daemon keeps one connection per target: a
  wait-event tick on a cluster holding N/K simulated targets reads N/K backends' entries, and
  with 1 s ticks that dominates the clusters' CPU (1.1 ms per tick with 500 targets per
  cluster, against 0.05-0.1 ms on a real server: bench/collector_cost.py). Spread the targets
  over more clusters (--servers 20: 50 per cluster, like a small real server's connections)
  to keep that cost realistic.
- The target clusters do the work of N servers on this machine's cores, next to the store and
  the collector; they run at nice --target-nice (default 10) so that they do not take the CPU
  the store and the collector need first (on a real fleet they are other machines). They run
  with fsync and autovacuum off (they are only read; autovacuum would visit 500 databases a
  minute). The store keeps LocalCluster's defaults (fsync on).

Verdict "sustained" when: every target completed at least max(2, floor(duration/interval))
cycles, no cycle failed, the largest scheduling lag is below the interval, every cycle reached
the store less than one interval after it was collected (snapshots.ingested_at - collected_at)
and what was queued at stop was delivered within one interval (so the queue does not grow),
the spool stayed empty, the store rejected nothing, its snapshot ledger holds exactly one
'availability' row and one 'query_stats' row per completed cycle for every instance (no loss,
no duplicates), and wait-event sampling (when on) did at least 90 % of its ticks.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collector_cost import cluster_cpu_s  # noqa: E402

from pganalytics import localpg, store  # noqa: E402
from pganalytics.collector import config as cfg  # noqa: E402
from pganalytics.collector import delivery as delivery_mod  # noqa: E402
from pganalytics.collector import sources  # noqa: E402
from pganalytics.collector.daemon import Collector  # noqa: E402
from pganalytics.collector.sink import Sink  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
N_TABLES = 10
ROWS = 1000
MON_ROLE = "pga_mon"
PREFIX = "sim_"


_SHAPES = [
    "SELECT count(*) FROM t{t}", "SELECT v FROM t{t} WHERE id = 1",
    "SELECT max(n) FROM t{t} WHERE id < 100", "UPDATE t{t} SET v = v WHERE id = 3",
    "SELECT id FROM t{t} WHERE n = 1 ORDER BY id LIMIT 10",
    "SELECT n, count(*) FROM t{t} GROUP BY n ORDER BY 2 DESC LIMIT 5",
    "DELETE FROM t{t} WHERE id = -5",
    "INSERT INTO t{t} VALUES (-1, 0, 'x') ON CONFLICT (id) DO UPDATE SET n = t{t}.n + 1",
    "SELECT EXISTS (SELECT 1 FROM t{t} WHERE v LIKE 'ab%')",
    "SELECT a.id, b.v FROM t{t} a JOIN t{u} b USING (id) WHERE a.n = 5",
    "SELECT min(v) FROM t{t}", "SELECT sum(n) FROM t{t} WHERE n > 50",
    "SELECT id, v FROM t{t} WHERE v > 'f' ORDER BY v LIMIT 3", "SELECT count(DISTINCT n) FROM t{t}",
    "SELECT avg(id) FROM t{t} WHERE n BETWEEN 10 AND 20", "UPDATE t{t} SET n = n WHERE n = 96 AND id < 0",
    "SELECT id FROM t{t} WHERE id > 900 ORDER BY id DESC LIMIT 1",
    "WITH x AS (SELECT n FROM t{t} WHERE id < 50) SELECT count(*) FROM x",
    "SELECT length(v) FROM t{t} WHERE id = 9", "SELECT n FROM t{t} WHERE id = 2 FOR UPDATE",
]
# 200 distinct statements (20 shapes x 10 tables): one application's worth of pg_stat_statements.
WORKLOAD = [q.format(t=t, u=(t + 1) % N_TABLES) for q in _SHAPES for t in range(N_TABLES)]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- setup ------------------------------------------------------------------------------------
def _quiet(dsn: str, **kw) -> psycopg.Connection:
    """A superuser session whose statements pg_stat_statements does not record."""
    return psycopg.connect(dsn, autocommit=True, options="-c pg_stat_statements.track=none", **kw)


def prepare_cluster(cluster: localpg.LocalCluster, dbnames: list[str], pgss_entries: int,
                    pgss_databases: int, setup_conns: int) -> dict:
    t0 = time.monotonic()
    with _quiet(cluster.dsn) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        c.execute(f"CREATE ROLE {MON_ROLE} LOGIN IN ROLE pg_monitor")
        c.execute(f"ALTER ROLE {MON_ROLE} SET pg_stat_statements.track = 'none'")
        c.execute(f"CREATE DATABASE {PREFIX}template")
    with _quiet(cluster.dsn_for(f"{PREFIX}template")) as c:
        c.execute("CREATE EXTENSION pg_stat_statements")
        for t in range(N_TABLES):
            c.execute(f"CREATE TABLE t{t} (id int PRIMARY KEY, n int NOT NULL, v text)")
            c.execute(f"INSERT INTO t{t} SELECT g, g % 97, md5(g::text) FROM generate_series(1, {ROWS}) g")
            c.execute(f"CREATE INDEX t{t}_n ON t{t} (n)")
        c.execute("VACUUM ANALYZE")

    def create(chunk: list[str]) -> None:
        with _quiet(cluster.dsn) as c:
            for name in chunk:
                c.execute(f"CREATE DATABASE {name} TEMPLATE {PREFIX}template")

    def activity(name: str) -> None:  # non-zero table/index statistics, untracked by pgss
        with _quiet(cluster.dsn_for(name)) as c:
            for t in range(N_TABLES):
                c.execute(f"SELECT count(*) FROM t{t}")
                c.execute(f"SELECT v FROM t{t} WHERE id = 7")
                c.execute(f"UPDATE t{t} SET n = n + 1 WHERE id <= 10")

    chunks = [dbnames[i::setup_conns] for i in range(setup_conns)]
    with ThreadPoolExecutor(setup_conns) as pool:
        list(pool.map(create, chunks))
    t_created = time.monotonic()
    with ThreadPoolExecutor(setup_conns) as pool:
        list(pool.map(activity, dbnames))

    # ~pgss_entries distinct statements, in pgss_databases application databases (named
    # outside the sim_ prefix, so every simulated target sees them, like a server's app database).
    with _quiet(cluster.dsn) as c:
        for j in range(pgss_databases):
            c.execute(f"CREATE DATABASE app{j} TEMPLATE {PREFIX}template")
        c.execute("SELECT pg_stat_statements_reset()")
    per_db = math.ceil(pgss_entries / pgss_databases)
    for j in range(pgss_databases):
        with psycopg.connect(cluster.dsn_for(f"app{j}"), autocommit=True) as c:
            for q in WORKLOAD[:per_db]:
                for _ in range(3):
                    c.execute(q)
    with _quiet(cluster.dsn) as c:
        entries = c.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0]
    return {"databases": len(dbnames), "create_s": round(t_created - t0, 1),
            "total_s": round(time.monotonic() - t0, 1), "pgss_entries": entries}


def narrow_database_sources() -> None:
    """Each simulated target sees pg_stat_database / pg_database_size as a one-application
    server would: its own database plus postgres and the templates, not its 499 siblings."""
    keep = f"(datname = current_database() OR datname NOT LIKE '{PREFIX}%')"
    replaced = []
    for s in sources.ALL:
        if s.name == "pg_stat_database":
            s = dataclasses.replace(s, variants=tuple(
                dataclasses.replace(v, sql=f"{v.sql} AND {keep}") for v in s.variants))
        elif s.name == "pg_database_size":
            s = dataclasses.replace(s, variants=tuple(
                dataclasses.replace(v, sql=f"{v.sql} AND {keep}") for v in s.variants))
        replaced.append(s)
    sources.ALL = tuple(replaced)


# -- instrumented collector -------------------------------------------------------------------
class BenchCollector(Collector):
    """The product's Collector; only records when each cycle was due, started and ended, and
    times the delivery thread (per store transaction, per batch)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.t0 = 0.0
        self.records: list[tuple] = []  # (name, due, start, end, failed)
        self.sync_calls: list[tuple[float, float]] = []  # (at, seconds) of on_connect refreshes
        self.tick_wall: list[float] = []
        self.groups: list[tuple[int, float]] = []  # (batches, seconds) per store transaction
        self.batch_time: list[tuple[str, float]] = []  # (source, seconds) per batch, in its savepoint
        self.batches_put = 0
        self._put_lock = threading.Lock()
        for state in self.targets.values():
            state.bench_due = state.next_fast  # the first due time (the daemon's per-name phase)
            state.bench_first_tick = state.next_tick  # ticks start at the same phase
        put, deliver = self.delivery.put, self.delivery._deliver

        def counting_put(item):
            with self._put_lock:
                self.batches_put += len(item)
            put(item)

        def timed_deliver(batches):
            t = time.monotonic()
            try:
                return deliver(batches)
            finally:
                self.groups.append((len(batches) if isinstance(batches, list) else 1, time.monotonic() - t))
        self.delivery.put, self.delivery._deliver = counting_put, timed_deliver
        bench = self

        class TimedSink(Sink):
            def deliver(self, batch):
                t = time.monotonic()
                try:
                    return super().deliver(batch)
                finally:
                    bench.batch_time.append((batch.source, time.monotonic() - t))
        delivery_mod.Sink = TimedSink  # the Sink the delivery thread creates on connect

    def _cycle(self, state, cadences):
        start = time.monotonic()
        due = getattr(state, "bench_due", self.t0)
        try:
            super()._cycle(state, cadences)
        finally:
            end = time.monotonic()
            # Still running, so the scheduler leaves state alone: next_fast now is when the
            # next cycle becomes due (the daemon's fixed-rate next, or a backoff).
            state.bench_due = state.next_fast
            self.records.append((state.name, due, start, end, state.failures > 0))

    def _tick(self, state):
        t = time.monotonic()
        done = super()._tick(state)
        self.tick_wall.append(time.monotonic() - t)
        # One tick per target at a time (the scheduler waits for state.ticking), so no race.
        state.bench_ticks = getattr(state, "bench_ticks", 0) + done
        return done

    def _sync_targets_with_store(self, sink):
        t = time.monotonic()
        try:
            super()._sync_targets_with_store(sink)
        finally:
            self.sync_calls.append((t, time.monotonic() - t))


def children(cluster: localpg.LocalCluster) -> list[int]:
    postmaster = int(cluster.pidfile.read_text().split()[0])
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                out.append(int(pid))
        except OSError:
            pass
    return out


def thread_cpu_s(native_id: int) -> float:
    try:
        f = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICKS


def machine_cpu() -> tuple[int, int]:
    """(busy, total) ticks of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(f) - f[3] - f[4], sum(f)


def self_cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


SAMPLE_FIELDS = ["t_s", "cpu_s", "queue_items", "spool", "delivered", "batches_put", "cycles",
                 "delivery_thread_cpu_s", "ticks"]


def run(collector: BenchCollector, duration: float, clusters, py_spy: str | None,
        drain_timeout: float, py_spy_gil: bool = False) -> dict:
    samples: list[tuple] = []  # SAMPLE_FIELDS, once a second
    stop_sampling = threading.Event()
    targets = list(collector.targets.values())
    delivery_tid = []

    def sampler() -> None:
        nxt = time.monotonic()
        while not stop_sampling.is_set():
            if not delivery_tid and collector.delivery._thread.native_id:
                delivery_tid.append(collector.delivery._thread.native_id)
            samples.append((round(time.monotonic() - collector.t0, 2), self_cpu_s(),
                            collector.delivery.inbox.qsize(), len(collector.spool),
                            collector.delivery.delivered, collector.batches_put,
                            sum(s.cycles for s in targets),
                            thread_cpu_s(delivery_tid[0]) if delivery_tid else 0.0,
                            sum(getattr(s, "bench_ticks", 0) for s in targets)))
            nxt += 1.0
            stop_sampling.wait(max(0.0, nxt - time.monotonic()))

    # daemon: if the bench itself is interrupted, the process still exits after cleanup
    runner = threading.Thread(target=collector.run, name="collector-run", daemon=True)
    cluster_cpu0 = {c.datadir.name: cluster_cpu_s(c.datadir) for c in clusters}
    mach0 = machine_cpu()
    thread_cpu0 = {th.native_id: thread_cpu_s(th.native_id) for th in threading.enumerate() if th.native_id}
    cpu0, wall0, epoch0 = self_cpu_s(), time.monotonic(), time.time()
    collector.t0 = wall0
    runner.start()
    threading.Thread(target=sampler, name="bench-sampler", daemon=True).start()
    spy = None
    if py_spy:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(os.getpid()),
                                "--duration", str(int(duration)), "--rate", "50", "--format", "raw",
                                "--threads", "--nonblocking", *(["--gil"] if py_spy_gil else []),
                                "--output", py_spy],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        last_print = 0.0
        while (el := time.monotonic() - wall0) < duration:
            time.sleep(min(1.0, duration - el))
            if el - last_print >= 10 and samples:
                last_print = el
                s = samples[-1]
                log(f"t={s[0]:5.0f}s cycles={s[6]} queue={s[2]} spool={s[3]} batches put={s[5]} "
                    f"delivered={s[4]} ticks={s[8]} cpu={100 * (s[1] - cpu0) / max(s[0], 1e-9):.0f}% of a core")
        # Per-thread CPU before the pool's threads go away (created during the run, except the
        # bench's main thread, whose setup work before the run is subtracted).
        by_group: dict[str, float] = {}
        for th in threading.enumerate():
            if th.native_id is None:
                continue
            used = thread_cpu_s(th.native_id) - thread_cpu0.get(th.native_id, 0.0)
            group = ("workers" if th.name.startswith("pganalytics-target") else
                     "delivery" if th.name == "pganalytics-delivery" else
                     "scheduler" if th.name == "collector-run" else
                     "bench" if th.name.startswith("bench") or th.name == "MainThread" else "other")
            by_group[group] = by_group.get(group, 0.0) + used
        cpu1, wall1 = self_cpu_s(), time.monotonic()
        mach1 = machine_cpu()
        cluster_cpu1 = {c.datadir.name: cluster_cpu_s(c.datadir) for c in clusters}
    finally:
        collector.request_stop()
    runner.join()
    t_stopped = time.monotonic()
    collector.delivery._thread.join(drain_timeout)  # run() waits 30 s for the queue; give it more
    t_drained = time.monotonic()
    stop_sampling.set()
    spy_err = None
    if spy is not None:
        try:
            _, spy_err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.terminate()
            _, spy_err = spy.communicate()
    return {
        "samples": samples, "wall_s": wall1 - wall0, "epoch0": epoch0, "cpu_s": cpu1 - cpu0,
        "thread_cpu_s": by_group,
        "machine_busy": (mach1[0] - mach0[0]) / max(1, mach1[1] - mach0[1]),
        "cluster_cpu_s": {k: cluster_cpu1[k] - cluster_cpu0[k] for k in cluster_cpu0},
        "stop_to_pool_done_s": t_stopped - wall1, "stop_to_delivered_s": t_drained - wall1,
        "delivery_alive_after_join": collector.delivery._thread.is_alive(),
        "queue_left_after_drain_wait": collector.delivery.inbox.qsize(),
        "py_spy_stderr": (spy_err or "").strip()[-500:] if spy is not None else None,
    }


def check_store(store_dsn: str, collector: BenchCollector, epoch0: float) -> dict:
    """The ledger: one availability frame (the pg_up series) per cycle per instance, and how long
    each took from collection (target clock) to the store (stored_at; same machine, same clock)."""
    availability = ("(SELECT f.instance_id, f.ts, f.stored_at FROM pganalytics.sample_frames f "
                    "JOIN pganalytics.sample_layouts l USING (instance_id, layout_id) "
                    "JOIN pganalytics.series r ON r.instance_id = f.instance_id AND r.series_id = l.series_ids[1] "
                    "WHERE r.metric = 'pg_up')")
    with psycopg.connect(store_dsn) as c:
        rows = c.execute(
            "SELECT i.name, count(s.ts), count(DISTINCT s.ts) "
            f"FROM pganalytics.instances i LEFT JOIN {availability} s "
            "ON s.instance_id = i.instance_id GROUP BY i.name").fetchall()
        qs = dict(c.execute(
            "SELECT i.name, count(s.collected_at) FROM pganalytics.instances i "
            "LEFT JOIN pganalytics.snapshots s ON s.instance_id = i.instance_id "
            "AND s.source = 'query_stats' GROUP BY i.name").fetchall())
        latency = c.execute(
            "SELECT extract(epoch FROM ts)::float8 - %s, extract(epoch FROM stored_at - ts)::float8 "
            f"FROM {availability} a", (epoch0,)).fetchall()
        totals = dict(c.execute("SELECT source, count(*) FROM pganalytics.snapshots GROUP BY 1").fetchall())
        n_samples = c.execute("SELECT count(*) FROM pganalytics.samples").fetchone()[0]
        n_series = c.execute("SELECT count(*) FROM pganalytics.series").fetchone()[0]
        n_qs = c.execute("SELECT count(*) FROM pganalytics.query_stats").fetchone()[0]
    got = {name: (n, d) for name, n, d in rows}
    mismatched = {name: {"cycles": st.cycles, "availability_rows": got.get(name, (0, 0))[0]}
                  for name, st in collector.targets.items() if got.get(name, (0, 0))[0] != st.cycles}
    duplicates = sum(n - d for n, d in got.values())
    qs_missing = sum(max(0, st.cycles - qs.get(name, 0)) for name, st in collector.targets.items())
    rejected = len(list((collector.spool.dir / "rejected").glob("*.batch")))
    return {"instances_registered": len(got), "mismatched": dict(list(mismatched.items())[:20]),
            "n_mismatched": len(mismatched), "duplicates": duplicates, "snapshots_by_source": totals,
            "samples_rows": n_samples, "series": n_series, "query_stats_rows": n_qs,
            "query_stats_snapshots_missing": qs_missing, "rejected_batches": rejected,
            "latency": sorted(latency)}


def analyse(args, collector: BenchCollector, r: dict, store_check: dict) -> dict:
    interval, duration = args.interval_s, args.duration_s
    recs = list(collector.records)
    lags = [start - due for _, due, start, _, _ in recs]
    durations = [end - start for _, _, start, end, _ in recs]
    failed = sum(1 for *_, f in recs if f)
    cycles = [st.cycles for st in collector.targets.values()]
    expected = max(2, math.floor(duration / interval))
    samples = r["samples"]
    in_run = [s for s in samples if s[0] <= r["wall_s"]] or samples[:1]
    t0 = collector.t0
    latency = store_check.pop("latency")
    tick_s = collector.config.sample_interval_s
    # A target's ticks are due from its first tick (its phase, spread over the first
    # interval so a fleet does not connect at once), not from the start of the run.
    first_ticks = [st.bench_first_tick - t0 for st in collector.targets.values()]

    def ticks_due(a: float, b: float) -> float:
        return sum(max(0.0, b - max(a, f)) for f in first_ticks) / tick_s
    windows = []
    for k in range(math.ceil(duration / interval)):
        w0, w1 = k * interval, (k + 1) * interval
        wrec = [x for x in recs if w0 <= x[1] - t0 < w1]
        wlat = [lat for at, lat in latency if w0 <= at < w1]
        win = [s for s in in_run if w0 <= s[0] < w1]
        ticks = None
        if tick_s > 0 and len(win) > 1:
            ticks = (win[-1][8] - win[0][8]) / max(1e-9, ticks_due(win[0][0], win[-1][0]))
        windows.append({
            "window_s": [w0, w1], "full_window": w1 <= r["wall_s"], "cycles_due": len(wrec),
            "max_lag_s": round(max((x[2] - x[1] for x in wrec), default=0.0), 3),
            "queue_min": min((s[2] for s in win), default=None), "queue_max": max((s[2] for s in win), default=None),
            "delivery_latency_p50_s": pct(wlat, 50), "delivery_latency_max_s": max(wlat, default=None),
            "ticks_done_share": ticks,
        })
    lat_all = [lat for _, lat in latency]
    reasons = []
    if min(cycles) < expected:
        reasons.append(f"{sum(c < expected for c in cycles)} targets completed fewer than {expected} cycles "
                       f"(min {min(cycles)})")
    if failed:
        reasons.append(f"{failed} cycles failed (target down / unreachable)")
    if max(lags) >= interval:
        reasons.append(f"max scheduling lag {max(lags):.1f} s >= interval {interval:.0f} s")
    if lat_all and max(lat_all) >= interval:
        reasons.append(f"a cycle took {max(lat_all):.0f} s from collection to the store (>= interval: the "
                       "delivery queue grows)")
    if r["stop_to_delivered_s"] >= interval or r["delivery_alive_after_join"]:
        reasons.append(f"the queue left at stop took {r['stop_to_delivered_s']:.0f} s to deliver"
                       + (f" and {r['queue_left_after_drain_wait']} items were still queued"
                          if r["delivery_alive_after_join"] else ""))
    if max(s[3] for s in samples) > 0 or len(collector.spool) > 0:
        reasons.append("spool was used")
    if store_check["n_mismatched"] or store_check["duplicates"]:
        reasons.append(f"store ledger: {store_check['n_mismatched']} instances whose availability rows "
                       f"!= cycles, {store_check['duplicates']} duplicates")
    if store_check["rejected_batches"] or store_check["query_stats_snapshots_missing"]:
        reasons.append(f"the store rejected {store_check['rejected_batches']} batches; "
                       f"{store_check['query_stats_snapshots_missing']} cycles have no query_stats snapshot")
    ticks = [getattr(st, "bench_ticks", 0) for st in collector.targets.values()]
    wait_sampling = None
    if tick_s > 0:
        due = ticks_due(0.0, r["wall_s"])
        wait_sampling = {"interval_s": tick_s, "ticks_per_target_due": due / len(ticks),
                         "ticks_per_target": {"min": min(ticks), "p50": pct(ticks, 50), "max": max(ticks)},
                         "share_done": sum(ticks) / due}
        if wait_sampling["share_done"] < 0.9:
            reasons.append(f"wait-event sampling ran {100 * wait_sampling['share_done']:.0f} % of its "
                           f"{tick_s:g} s ticks (< 90 %)")
    by_source: dict[str, list[float]] = {}
    for src, sec in list(collector.batch_time):
        by_source.setdefault(src, []).append(sec)
    batch_time = {src: {"n": len(v), "mean_ms": 1000 * statistics.fmean(v), "p95_ms": 1000 * pct(v, 95),
                        "total_s": sum(v)} for src, v in sorted(by_source.items())}
    groups = list(collector.groups)
    in_batches = sum(v["total_s"] for v in batch_time.values())
    delivery = {
        "transactions": len(groups), "batches": sum(n for n, _ in groups),
        "batches_per_transaction_mean": statistics.fmean([n for n, _ in groups]) if groups else None,
        "transaction_wall_s": sum(t for _, t in groups), "in_batches_s": in_batches,
        "ms_per_batch": 1000 * sum(t for _, t in groups) / max(1, sum(n for n, _ in groups)),
        "batches_put_per_s": in_run[-1][5] / in_run[-1][0],
        "batches_delivered_per_s_during_run": in_run[-1][4] / in_run[-1][0],
        "by_source": batch_time,
    }
    busy = sum(durations) + sum(collector.tick_wall)
    pool = {"cycle_wall_s": sum(durations), "tick_wall_s": sum(collector.tick_wall), "ticks": len(collector.tick_wall),
            "busy_share": busy / (args.workers * (r["wall_s"] + r["stop_to_pool_done_s"]))}
    cpu_core = r["cpu_s"] / r["wall_s"]
    ncpu = os.cpu_count()
    return {
        "verdict": "sustained" if not reasons else "not sustained", "reasons": reasons,
        "expected_min_cycles": expected,
        "cycles_per_target": {"min": min(cycles), "max": max(cycles), "total": sum(cycles),
                              "histogram": {str(c): cycles.count(c) for c in sorted(set(cycles))}},
        "failed_cycles": failed, "wait_sampling": wait_sampling, "pool": pool, "delivery": delivery,
        "lag_s": {"p50": pct(lags, 50), "p95": pct(lags, 95), "p99": pct(lags, 99), "max": max(lags)},
        "cycle_s": {"p50": pct(durations, 50), "p95": pct(durations, 95), "max": max(durations)},
        "delivery_latency_s": {"p50": pct(lat_all, 50), "p95": pct(lat_all, 95), "max": max(lat_all, default=None)},
        "windows": windows,
        "queue_max": max(s[2] for s in samples), "spool_max": max(s[3] for s in samples),
        "delivered": collector.delivery.delivered,
        "cpu": {"process_s": r["cpu_s"], "wall_s": r["wall_s"],
                "pct_of_one_core": 100 * cpu_core, "pct_of_machine": 100 * cpu_core / ncpu,
                "ms_per_cycle": 1000 * r["cpu_s"] / max(1, len(recs)),
                "pct_of_one_core_per_100_targets": 100 * cpu_core / args.targets * 100,
                "by_thread_s": {k: round(v, 2) for k, v in r["thread_cpu_s"].items()},
                "delivery_thread_pct_of_one_core": 100 * r["thread_cpu_s"].get("delivery", 0) / r["wall_s"],
                "machine_busy_pct": 100 * r["machine_busy"],
                # Whatever else ran on the machine meanwhile (other benchmarks, tests), % of one core.
                "others_pct_of_one_core": 100 * (r["machine_busy"] * ncpu - cpu_core
                                                 - sum(r["cluster_cpu_s"].values()) / r["wall_s"]),
                "clusters_pct_of_one_core": {k: round(100 * v / r["wall_s"], 1)
                                             for k, v in r["cluster_cpu_s"].items()},
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "target_sync": {"calls": len(collector.sync_calls),
                        "seconds": [round(s, 2) for _, s in collector.sync_calls]},
        "stop_to_pool_done_s": r["stop_to_pool_done_s"], "stop_to_delivered_s": r["stop_to_delivered_s"],
        "store": store_check,
    }


def git_state() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True).stdout.split("\n")
        return {"head": head, "dirty": [d.strip() for d in dirty if d.strip()]}
    except OSError:
        return {}


def _f(x, fmt=".1f"):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def summary(args, res: dict, setup: dict) -> str:
    a = res
    cpu, d = a["cpu"], a["delivery"]
    lines = [
        f"collector scale: {args.targets} targets on {args.servers} target clusters (PostgreSQL "
        f"{setup['target_version']}), interval {args.interval_s:.0f} s (fast = slow), wait sampling "
        f"{setup['sample_interval_s']:g} s, {args.workers} workers, {args.duration_s:.0f} s, {os.cpu_count()} cores, "
        f"code {res['git'].get('head')}{' + local changes' if res['git'].get('dirty') else ''}",
        f"  setup: {setup['setup_s']:.0f} s; pg_stat_statements entries per cluster: "
        f"{[c['pgss_entries'] for c in setup['clusters']]}",
        f"  verdict: {a['verdict'].upper()}" + ("" if not a["reasons"] else "  <- " + "; ".join(a["reasons"])),
        f"  cycles per target: min {a['cycles_per_target']['min']} max {a['cycles_per_target']['max']} "
        f"(expected >= {a['expected_min_cycles']}), histogram {a['cycles_per_target']['histogram']}, "
        f"failed {a['failed_cycles']}",
        f"  scheduling lag s: p50 {a['lag_s']['p50']:.2f}  p95 {a['lag_s']['p95']:.2f}  "
        f"p99 {a['lag_s']['p99']:.2f}  max {a['lag_s']['max']:.2f};  cycle s: p50 "
        f"{a['cycle_s']['p50']:.3f}  p95 {a['cycle_s']['p95']:.3f}  max {a['cycle_s']['max']:.3f}",
        f"  collection -> store s (ledger): p50 {_f(a['delivery_latency_s']['p50'], '.2f')}  p95 "
        f"{_f(a['delivery_latency_s']['p95'], '.2f')}  max {_f(a['delivery_latency_s']['max'], '.2f')}",
        "  windows (by due time): cycles, max lag, queue items min..max, collection->store p50/max, ticks done",
    ]
    for w in a["windows"]:
        lines.append(f"    [{w['window_s'][0]:>4.0f},{w['window_s'][1]:>4.0f}) {w['cycles_due']:>5}  "
                     f"lag {w['max_lag_s']:>6.2f} s  queue {_f(w['queue_min'], 'd')}..{_f(w['queue_max'], 'd')}  "
                     f"latency {_f(w['delivery_latency_p50_s'], '.2f')}/{_f(w['delivery_latency_max_s'], '.2f')} s"
                     + ("" if w["ticks_done_share"] is None else f"  ticks {100 * w['ticks_done_share']:.0f} %")
                     + ("" if w["full_window"] else "  (cut by stop)"))
    ws = a["wait_sampling"]
    lines += [
        ("  wait-event sampling: off" if not ws else
         f"  wait-event sampling every {ws['interval_s']:g} s: {100 * ws['share_done']:.0f} % of due ticks done "
         f"(per target min {ws['ticks_per_target']['min']}, p50 {ws['ticks_per_target']['p50']}, "
         f"due {ws['ticks_per_target_due']:.0f})"),
        f"  delivery: {a['delivered']} batches in {d['transactions']} store transactions "
        f"({_f(d['batches_per_transaction_mean'])} per transaction), {d['ms_per_batch']:.2f} ms per batch; "
        f"put {d['batches_put_per_s']:.0f}/s, delivered {d['batches_delivered_per_s_during_run']:.0f}/s during the run; "
        f"queue max {a['queue_max']} items, spool max {a['spool_max']}; all delivered {a['stop_to_delivered_s']:.1f} s "
        f"after stop; target sync with the store {a['target_sync']['calls']}x, {a['target_sync']['seconds']} s",
        "  delivery ms per batch inside its savepoint (mean/p95): " + ", ".join(
            f"{k} {v['mean_ms']:.1f}/{v['p95_ms']:.1f}" for k, v in d["by_source"].items()),
        f"  worker pool busy {100 * a['pool']['busy_share']:.0f} % (cycles {a['pool']['cycle_wall_s']:.0f} s, "
        f"{a['pool']['ticks']} ticks {a['pool']['tick_wall_s']:.0f} s of wall time)",
        f"  collector CPU: {cpu['pct_of_one_core']:.1f} % of one core = {cpu['pct_of_machine']:.1f} % of the "
        f"machine ({cpu['ms_per_cycle']:.1f} ms per target cycle, ticks included; "
        f"{cpu['pct_of_one_core_per_100_targets']:.2f} % of a core per 100 targets; anchor pgwatch < 20 %)",
        f"    by thread (s): {cpu['by_thread_s']}; delivery thread {cpu['delivery_thread_pct_of_one_core']:.1f} % "
        f"of one core; max RSS {cpu['max_rss_mb']:.0f} MB",
        f"  machine busy {cpu['machine_busy_pct']:.0f} %; server CPU (% of one core): {cpu['clusters_pct_of_one_core']}; "
        f"other processes {cpu['others_pct_of_one_core']:.0f} % of one core",
        f"  store: {a['store']['instances_registered']} instances, availability rows != cycles for "
        f"{a['store']['n_mismatched']}, duplicates {a['store']['duplicates']}; "
        f"{a['store']['samples_rows']:,} samples, {a['store']['series']:,} series, "
        f"{a['store']['query_stats_rows']:,} query_stats rows; rejected batches {a['store']['rejected_batches']}, "
        f"cycles without a query_stats snapshot {a['store']['query_stats_snapshots_missing']}",
    ] + ([f"  NOTE: diagnostic run: sys.setswitchinterval({args.switch_interval_s:g})"]
         if args.switch_interval_s else [])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--duration-s", type=float, default=200)
    ap.add_argument("--interval-s", type=float, default=60)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--servers", type=int, default=2, help="target clusters the databases are spread over")
    ap.add_argument("--sample-interval-s", type=float,
                    help="wait-event sampling tick (default: the product's default; 0 = off)")
    ap.add_argument("--pg-bindir", help="server binaries (default: newest installed)")
    ap.add_argument("--pgss-entries", type=int, default=200, help="pg_stat_statements entries per cluster")
    ap.add_argument("--pgss-databases", type=int, default=1,
                    help="application databases per cluster that hold those entries (plan capture connects to each)")
    ap.add_argument("--setup-conns", type=int, default=4, help="parallel setup sessions per cluster")
    ap.add_argument("--instance-wide-db-views", action="store_true",
                    help="let every simulated target read every database of its cluster")
    ap.add_argument("--drain-timeout-s", type=float, default=120,
                    help="after stop, how long to wait for the delivery queue before judging")
    ap.add_argument("--store-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="diagnostic: a postgresql.conf setting for the store (e.g. synchronous_commit=off)")
    ap.add_argument("--switch-interval-s", type=float,
                    help="diagnostic: the interpreter's GIL switch interval (sys.setswitchinterval; "
                         "default 0.005)")
    ap.add_argument("--target-nice", type=int, default=10,
                    help="nice value of the target clusters (0 = same priority as the collector and store)")
    ap.add_argument("--tag", default="", help="suffix of the result file: collector-scale-N-TAG.json")
    ap.add_argument("--py-spy", metavar="FILE", help="record a py-spy profile (raw collapsed stacks) of the run")
    ap.add_argument("--py-spy-gil", action="store_true",
                    help="profile only the thread holding the GIL (where the process's Python CPU goes)")
    args = ap.parse_args()
    if math.ceil(args.pgss_entries / args.pgss_databases) > len(WORKLOAD):
        ap.error(f"at most {len(WORKLOAD)} pg_stat_statements entries per application database")
    if args.switch_interval_s:
        sys.setswitchinterval(args.switch_interval_s)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bindir = localpg.find_bindir(args.pg_bindir)
    base = Path(tempfile.mkdtemp(prefix="pga-scale-"))
    targets = [localpg.LocalCluster(base / f"target{k}", localpg.free_port(), bindir) for k in range(args.servers)]
    store_cluster = localpg.LocalCluster(base / "store", localpg.free_port(), localpg.find_bindir())
    per_cluster_targets = math.ceil(args.targets / args.servers)
    target_settings = {"max_connections": str(per_cluster_targets + 4 * args.workers + 50), "shared_buffers": "'64MB'",
                       "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off",
                       "autovacuum": "off", "max_wal_size": "'4GB'"}
    setup: dict = {}
    git = git_state()  # the code measured is the tree at start (others may commit meanwhile)
    try:
        t_setup = time.monotonic()
        for c in targets:
            c.init(settings=target_settings)
        store_cluster.init(settings=dict(kv.split("=", 1) for kv in args.store_setting))
        for c in [*targets, store_cluster]:
            c.start()
            localpg.wait_ready(c.dsn)
        if args.target_nice:
            for c in targets:  # backends forked later inherit the postmaster's nice value
                postmaster = int(c.pidfile.read_text().split()[0])
                for pid in [postmaster, *children(c)]:
                    os.setpriority(os.PRIO_PROCESS, pid, args.target_nice)
                # The postmaster is a session leader: with autogroup scheduling its session is
                # one group, weighed against the others by the group's nice, not the processes'.
                try:
                    Path(f"/proc/{postmaster}/autogroup").write_text(str(args.target_nice))
                except OSError:
                    pass
        store.upgrade(store_cluster.dsn)
        log(f"clusters up; store installed; creating {args.targets} databases on {args.servers} clusters")
        names = [f"{PREFIX}{i:05d}" for i in range(args.targets)]
        per_cluster = [names[k::args.servers] for k in range(args.servers)]
        with ThreadPoolExecutor(args.servers) as pool:
            setup["clusters"] = list(pool.map(
                lambda kc: prepare_cluster(targets[kc], per_cluster[kc], args.pgss_entries,
                                            args.pgss_databases, args.setup_conns),
                range(args.servers)))
        setup["setup_s"] = time.monotonic() - t_setup
        setup["target_version"] = targets[0].version_num()
        log(f"setup done in {setup['setup_s']:.0f} s: {setup['clusters']}")
        if not args.instance_wide_db_views:
            narrow_database_sources()
        conf = cfg.parse({
            "store": {"dsn": store_cluster.dsn},
            "collector": {"interval_s": args.interval_s, "slow_interval_s": args.interval_s,
                          "workers": args.workers, "spool_dir": str(base / "spool"),
                          **({} if args.sample_interval_s is None else
                             {"sample_interval_s": args.sample_interval_s})},
            "targets": [{"name": f"t{i}", "conn": targets[i % args.servers].dsn_for(names[i]).replace(
                f"user={localpg.PG_USER}", f"user={MON_ROLE}")} for i in range(args.targets)],
        })
        setup["sample_interval_s"] = conf.sample_interval_s
        collector = BenchCollector(conf)
        log(f"running the collector for {args.duration_s:.0f} s")
        r = run(collector, args.duration_s, [*targets, store_cluster], args.py_spy, args.drain_timeout_s,
                args.py_spy_gil)
        store_check = check_store(store_cluster.dsn, collector, r["epoch0"])
        result = analyse(args, collector, r, store_check)
        if r["py_spy_stderr"] is not None:
            result["py_spy"] = {"output": args.py_spy, "stderr_tail": r["py_spy_stderr"]}
    finally:
        for c in [*targets, store_cluster]:
            c.destroy()
        shutil.rmtree(base, ignore_errors=True)
    result = {"params": {k: v for k, v in vars(args).items()}, "machine": {"cpus": os.cpu_count()},
              "git": git, "setup": setup, **result,
              "samples": {"fields": SAMPLE_FIELDS,
                          "rows": [[round(x, 3) if isinstance(x, float) else x for x in s] for s in r["samples"]]}}
    out = Path(__file__).parent / "results" / f"collector-scale-{args.targets}{'-' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(summary(args, result, setup))
    print(f"  -> {out}")


if __name__ == "__main__":
    main()
