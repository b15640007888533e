"""What one collector cycle costs, per target: client CPU, queries issued, bytes moved, and
the CPU it takes from the target - at the default cadence (fast sources every 10 s, slow ones
every 60 s, a wait-event sample every second).

    .venv/bin/python bench/collector_cost.py [--pg-bindir DIR] [--cycles 20]

Starts its own target and store servers (throwaway, loopback). The target gets 200 tables and
~1,000 distinct statements in pg_stat_statements, then goes quiet, so the target-side CPU
measured during a cycle is the collector's: the postmaster's own and reaped children's CPU
(/proc/PID/stat utime+stime+cutime+cstime) plus every live backend's; /proc counts in 10 ms
ticks, so target CPU is the mean over all cycles (other figures are medians). Bytes are counted by a
TCP relay between collector and servers. Cycles run the daemon's way, on the target's one
kept connection ("fast", "full"), and, for comparison, the `collect --once` way with a new
connection per cycle ("*_new_connection"); the load share is the daemon's.
Writes bench/results/collector-cost-pgNN.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tcpcount import CountingRelay  # noqa: E402

from pganalytics import localpg, store  # noqa: E402
from pganalytics.collector.cycle import run_cycle  # noqa: E402
from pganalytics.collector.run import deliver_report  # noqa: E402
from pganalytics.collector.session import TargetSession  # noqa: E402
from pganalytics.collector.sink import Sink  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cluster_cpu_s(datadir: Path) -> float:
    """CPU seconds used by a cluster so far: postmaster (+ reaped children) + live children."""
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def prepare_target(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pga_mon') THEN "
                     "CREATE ROLE pga_mon LOGIN IN ROLE pg_monitor; END IF; END $$")
        for i in range(200):
            conn.execute(f"CREATE TABLE IF NOT EXISTS t{i} (id int PRIMARY KEY, v text)")
            conn.execute(f"INSERT INTO t{i} SELECT g, md5(g::text) FROM generate_series(1, 200) g ON CONFLICT DO NOTHING")
            for shape in ("SELECT v FROM t{i} WHERE id = %s", "SELECT count(*) FROM t{i} WHERE id < %s",
                          "UPDATE t{i} SET v = v WHERE id = %s", "SELECT max(id) FROM t{i} WHERE v > %s::text",
                          "DELETE FROM t{i} WHERE id = -%s"):
                conn.execute(shape.format(i=i), (i,))
        conn.execute("ANALYZE")


def measure(target: localpg.LocalCluster, store_dsn: str, cycles: int) -> dict:
    relay = CountingRelay(target.port)
    store_relay = CountingRelay(int(psycopg.conninfo.conninfo_to_dict(store_dsn)["port"]))
    conn_ref = f"host=127.0.0.1 port={relay.port} user=pga_mon dbname=postgres"
    store_via_relay = psycopg.conninfo.make_conninfo(store_dsn, port=store_relay.port)
    with psycopg.connect(store_dsn, autocommit=True) as admin:
        admin.execute("SELECT pganalytics.register_instance('bench', %s)", (conn_ref,))
    with psycopg.connect(target.dsn, autocommit=True) as t:
        mon_oid = t.execute("SELECT oid FROM pg_roles WHERE rolname = 'pga_mon'").fetchone()[0]
    out = {}
    with psycopg.connect(store_via_relay, autocommit=True) as store_conn:
        sink = Sink(store_conn)
        # The daemon's way: one kept connection per target (TargetSession); and, for
        # comparison, `collect --once` (cron), which connects for every cycle.
        session = TargetSession("bench", conn_ref)
        modes = (("fast", frozenset({"fast"}), session), ("full", frozenset({"fast", "slow"}), session),
                 ("fast_new_connection", frozenset({"fast"}), None),
                 ("full_new_connection", frozenset({"fast", "slow"}), None))
        memory: dict = {}  # what the daemon keeps per target between cycles (texts sent, CPU state)

        def cycle(cadences, kept):
            if kept is None:
                return run_cycle("bench", conn_ref, cadences, memory=memory)
            with kept.lock:
                return run_cycle("bench", conn_ref, cadences, memory=memory, session=kept)

        deliver_report(sink, cycle(frozenset({"fast", "slow"}), session))  # warm-up: baseline, series ids
        for name, cadences, kept in modes:
            cpu, target_cpu, queries, target_bytes, store_bytes = [], [], [], [], []
            for _ in range(cycles):
                with psycopg.connect(target.dsn, autocommit=True) as t:
                    calls0 = t.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                       "WHERE userid = %s", (mon_oid,)).fetchone()[0]
                time.sleep(0.05)
                c0, t0, b0, s0 = client_cpu_s(), cluster_cpu_s(target.datadir), relay.total(), store_relay.total()
                report = cycle(cadences, kept)
                deliver_report(sink, report)
                c2 = client_cpu_s()
                time.sleep(0.05)
                t1, b1, s1 = cluster_cpu_s(target.datadir), relay.total(), store_relay.total()
                with psycopg.connect(target.dsn, autocommit=True) as t:
                    calls1 = t.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                       "WHERE userid = %s", (mon_oid,)).fetchone()[0]
                cpu.append((c2 - c0) * 1000)
                target_cpu.append((t1 - t0) * 1000)
                queries.append(int(calls1 - calls0))
                target_bytes.append(b1 - b0)
                store_bytes.append(s1 - s0)
                assert report.up and not report.unavailable.get("pg_stat_statements"), report.unavailable
            out[name] = {"client_cpu_ms": statistics.median(cpu), "target_cpu_ms": statistics.fmean(target_cpu),
                         "queries": statistics.median(queries), "target_bytes": statistics.median(target_bytes),
                         "store_bytes": statistics.median(store_bytes)}
        with session.lock:
            session.discard()
    out["tick"] = measure_ticks(target, conn_ref, relay)
    relay.close()
    store_relay.close()
    # Default cadence: 5 fast-only cycles and 1 full cycle per minute, a wait-event tick a second.
    per_s = ((5 * out["fast"]["target_cpu_ms"] + out["full"]["target_cpu_ms"]) / 60
             + out["tick"]["target_cpu_ms"]) / 1000
    out["target_cpu_share_of_one_core"] = per_s
    out["target_cpu_share_of_machine"] = per_s / os.cpu_count()
    client_per_s = ((5 * out["fast"]["client_cpu_ms"] + out["full"]["client_cpu_ms"]) / 60
                    + out["tick"]["client_cpu_ms"]) / 1000
    out["client_cpu_share_of_one_core"] = client_per_s
    return out


def measure_ticks(target: localpg.LocalCluster, conn_ref: str, relay: CountingRelay, n: int = 200) -> dict:
    """Wait-event sampling: one tick a second on a persistent connection (with 20 idle and 5
    busy sessions on the target, so there is something to count)."""
    from pganalytics.collector.activity import ActivitySampler
    from pganalytics.collector.target import connect

    others = [psycopg.connect(target.dsn, autocommit=True) for _ in range(25)]
    try:
        for conn in others[:5]:
            conn.execute("BEGIN")  # idle in transaction
        sampler = ActivitySampler(connect(conn_ref), "bench")
        sampler.tick()
        c0, t0, b0 = client_cpu_s(), cluster_cpu_s(target.datadir), relay.total()
        for _ in range(n):
            sampler.tick()
        c1, t1, b1 = client_cpu_s(), cluster_cpu_s(target.datadir), relay.total()
        sampler.conn.close()
    finally:
        for conn in others:
            conn.close()
    return {"client_cpu_ms": (c1 - c0) * 1000 / n, "target_cpu_ms": (t1 - t0) * 1000 / n,
            "target_bytes": (b1 - b0) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg-bindir", help="server binaries for the target (default: newest installed)")
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pga-cost-"))
    target = localpg.LocalCluster(base / "target", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    store_cluster = localpg.LocalCluster(base / "store", localpg.free_port(), localpg.find_bindir())
    try:
        for c in (target, store_cluster):
            c.init()
            c.start()
            localpg.wait_ready(c.dsn)
        store.upgrade(store_cluster.dsn)
        prepare_target(target.dsn)
        result = measure(target, store_cluster.dsn, args.cycles)
    finally:
        target.destroy()
        store_cluster.destroy()
    major = target.version_num()
    result["target_version"] = major
    out = Path(__file__).parent / "results" / f"collector-cost-pg{major}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"collector cost per cycle, PostgreSQL {major} target (medians of {args.cycles} cycles; target CPU: mean)")
    print(f"{'cycle':<22}{'client CPU ms':>14}{'target CPU ms':>15}{'queries':>9}{'target bytes':>14}{'store bytes':>13}")
    for name in ("fast", "full", "fast_new_connection", "full_new_connection"):
        r = result[name]
        print(f"{name:<22}{r['client_cpu_ms']:>14.1f}{r['target_cpu_ms']:>15.1f}{r['queries']:>9.0f}"
              f"{r['target_bytes']:>14,.0f}{r['store_bytes']:>13,.0f}")
    t = result["tick"]
    print(f"{'tick':<22}{t['client_cpu_ms']:>14.2f}{t['target_cpu_ms']:>15.2f}{1:>9}{t['target_bytes']:>14,.0f}{0:>13}"
          "   (wait-event sample, every second)")
    print(f"target CPU at the default 10 s/60 s cadence + 1 s ticks: {100 * result['target_cpu_share_of_one_core']:.3f} % "
          f"of one core = {100 * result['target_cpu_share_of_machine']:.3f} % of this {os.cpu_count()}-core machine "
          f"(goal < 0.5 %)")
    print(f"collector CPU per target: {100 * result['client_cpu_share_of_one_core']:.3f} % of one core")


if __name__ == "__main__":
    main()
