"""How fast the delivery thread puts batches into the store: the per-batch path (each batch in
a savepoint with its own staging and ingest call: what every group took before grouping, and
the fallback until the fallback became a bisection of the group) against the grouped fast path (no savepoints; every sample of the group in one COPY and one
call), measured in the same run on the same batches.

    .venv/bin/python bench/delivery_throughput.py [--targets 200] [--rounds 5] [--rtt-ms 0 1]
        [--pg-bindir DIR]

Starts one throwaway cluster (loopback). A real full collection cycle of that cluster (a
target with ~100 pg_stat_statements entries) gives the batch shapes: availability, host, the
sampled sources, settings, plans, query_stats; a wait_samples batch of 8 rows is added, as the
daemon's cycle drains one. Each round, every simulated target delivers one such cycle stamped
60 s after the previous one, with a quarter of its statements' counters moved; the rounds'
batches go through the product's Delivery._deliver in groups of Delivery.max_group (as the
delivery thread takes them from its queue), into a store database of their own per (mode,
RTT) cloned from one template. Round 1 is cold (series created, texts sent, the first
pg_stat_statements snapshot only sets the baseline); the figures are medians over the later,
steady rounds, the two modes alternating which goes first.

Statements are the delivery session's top-level statements (pg_stat_statements, track = top,
counted per store database): each is one round trip. --rtt-ms adds a round-trip delay with a
relay between collector and store (half each way), as a store across a network would. Store
CPU is the delivery backend's (/proc). Writes bench/results/delivery-throughput.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tcpcount import CountingRelay  # noqa: E402

from pganalytics import localpg, store  # noqa: E402
from pganalytics.collector import pgss  # noqa: E402
from pganalytics.collector.batch import QueryStatsBatch, RowsBatch  # noqa: E402
from pganalytics.collector.cycle import run_cycle  # noqa: E402
from pganalytics.collector.delivery import Delivery  # noqa: E402
from pganalytics.collector.spool import Spool  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
MODES = ("per-batch", "grouped")
CALLS = list(pgss.COLUMNS).index("calls")
TOTAL = list(pgss.COLUMNS).index("total_exec_time")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class _Delayed:
    """A socket whose sends leave `delay` seconds late."""

    def __init__(self, sock: socket.socket, delay: float):
        self.sock, self.delay = sock, delay

    def sendall(self, data: bytes) -> None:
        time.sleep(self.delay)
        self.sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)


class DelayRelay(CountingRelay):
    """The loopback relay of bench/tcpcount.py, holding each chunk rtt/2 in each direction."""

    def __init__(self, upstream_port: int, rtt_s: float):
        self.delay = rtt_s / 2
        super().__init__(upstream_port)

    def _pipe(self, src: socket.socket, dst: socket.socket, counter: str) -> None:
        for s in (src, dst):  # no Nagle: the delay is the only one added
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super()._pipe(src, _Delayed(dst, self.delay), counter)


# -- the batches ------------------------------------------------------------------------------
def prepare_target(dsn: str) -> None:
    """~100 distinct statements in pg_stat_statements, a few tables for the relation sources."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for t in range(10):
            conn.execute(f"CREATE TABLE t{t} (id int PRIMARY KEY, n int, v text)")
            conn.execute(f"INSERT INTO t{t} SELECT g, g % 7, md5(g::text) FROM generate_series(1, 500) g")
            for shape in ("SELECT v FROM t{t} WHERE id = %s", "SELECT count(*) FROM t{t} WHERE n < %s",
                          "UPDATE t{t} SET n = n WHERE id = %s", "SELECT max(id) FROM t{t} WHERE v > %s::text",
                          "DELETE FROM t{t} WHERE id = -%s", "SELECT sum(n) FROM t{t} WHERE id > %s",
                          "SELECT id FROM t{t} WHERE n = %s ORDER BY id LIMIT 5",
                          "SELECT count(DISTINCT n) FROM t{t} WHERE id < %s",
                          "SELECT min(v) FROM t{t} WHERE n > %s", "SELECT avg(id) FROM t{t} WHERE n = %s"):
                conn.execute(shape.format(t=t), (t,))
        conn.execute("ANALYZE")


def wait_samples(instance: str, at) -> RowsBatch:
    events = [("Client", "ClientRead", "idle"), ("LWLock", "WALWrite", "active"), ("IO", "DataFileRead", "active"),
              ("Lock", "transactionid", "active"), (None, None, "active"), ("IO", "WALSync", "active"),
              ("Activity", "WalWriterMain", None), ("Client", "ClientRead", "idle in transaction")]
    return RowsBatch(instance, "wait_samples", at, [
        {"datname": "app", "queryid": 1000 + i, "backend_type": "client backend", "state": state,
         "wait_event_type": kind, "wait_event": event, "samples": 3 + i, "ticks": 60, "interval_s": 60.0}
        for i, (kind, event, state) in enumerate(events)])


def move_counters(copy_data: bytes, step: int) -> bytes:
    """A quarter of the entries ran `step` more times (1 ms each) since the first snapshot."""
    lines = copy_data.decode().splitlines()
    for i in range(0, len(lines), 4):
        f = lines[i].split("\t")
        f[CALLS] = str(int(f[CALLS]) + step)
        f[TOTAL] = repr(float(f[TOTAL]) + step)
        lines[i] = "\t".join(f)
    return ("\n".join(lines) + "\n").encode()


def rounds_of_batches(template: list, targets: int, rounds: int) -> list[list]:
    """Per round, every target's cycle: the template's batches renamed and restamped."""
    t0 = max(b.collected_at for b in template)
    out = []
    for r in range(rounds):
        batches = []
        for i in range(targets):
            at = t0 + timedelta(seconds=60 * r + i * 60 / targets)
            name = f"t{i:04d}"
            for b in template + [wait_samples(name, at)]:
                b = dataclasses.replace(b, instance=name, collected_at=at)
                if isinstance(b, QueryStatsBatch):
                    b = dataclasses.replace(b, copy_data=move_counters(b.copy_data, r),
                                            texts=b.texts if r == 0 else [])
                batches.append(b)
        out.append(batches)
    return out


class PerBatch(Delivery):
    """Every batch on its own, each in a savepoint, in one transaction per group."""

    def _deliver_each(self, sink, batches: list) -> None:
        with sink.transaction():
            for batch in batches:
                sink.deliver(batch)


# -- measuring --------------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICKS


def statements(admin: psycopg.Connection, dbname: str) -> int:
    return admin.execute("SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
                         "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)",
                         (dbname,)).fetchone()[0]


def deliver_round(delivery: Delivery, batches: list, admin, dbname: str) -> dict:
    groups = [batches[i:i + delivery.max_group] for i in range(0, len(batches), delivery.max_group)]
    s0 = statements(admin, dbname)
    sink = delivery._connect()
    server0 = proc_cpu_s(sink.conn.info.backend_pid)
    c0, w0 = time.thread_time(), time.perf_counter()
    for g in groups:
        assert delivery._deliver(g), "the store did not take a group"
    wall, client = time.perf_counter() - w0, time.thread_time() - c0
    server = proc_cpu_s(sink.conn.info.backend_pid) - server0
    n = len(batches)
    return {"batches": n, "groups": len(groups), "wall_s": wall, "batches_per_s": n / wall,
            "statements_per_batch": (statements(admin, dbname) - s0) / n,
            "client_cpu_ms_per_batch": 1000 * client / n, "store_cpu_ms_per_batch": 1000 * server / n}


def check_store(dsn: str) -> dict:
    """Both modes must have stored the same: one ledger row per batch, every sample."""
    with psycopg.connect(dsn) as conn:
        return {"snapshots": conn.execute("SELECT count(*) FROM pganalytics.snapshots").fetchone()[0],
                "samples": conn.execute("SELECT count(*) FROM pganalytics.samples").fetchone()[0],
                "query_stat_deltas": conn.execute("SELECT count(*) FROM pganalytics.query_stat_deltas").fetchone()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5, help="cycles per target; the first is cold")
    ap.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 1.0],
                    help="round-trip delays to add between collector and store (0 = plain loopback)")
    ap.add_argument("--pg-bindir", help="server binaries (default: newest installed)")
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="pga-delivery-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir(args.pg_bindir))
    relays = []
    group_size = 0
    try:
        cluster.init()
        cluster.start()
        localpg.wait_ready(cluster.dsn)
        prepare_target(cluster.dsn)
        report = run_cycle("template", cluster.dsn)
        assert report.up and not report.unavailable.get("pg_stat_statements"), report.unavailable
        template = [b for b in report.batches if not isinstance(b, RowsBatch) or b.rows]
        log(f"one cycle: {len(template) + 1} batches: " + ", ".join(
            f"{b.source} ({len(getattr(b, 'samples', None) or getattr(b, 'rows', []) or []) if not isinstance(b, QueryStatsBatch) else b.rows})"
            for b in template) + ", wait_samples (8)")
        rounds = rounds_of_batches(template, args.targets, args.rounds)

        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            admin.execute("CREATE DATABASE store_template")
            tmpl_dsn = cluster.dsn_for("store_template")
            store.upgrade(tmpl_dsn)
            with psycopg.connect(tmpl_dsn, autocommit=True) as conn:
                conn.execute("SELECT pganalytics.register_instance(name, 'service=' || name) "
                             "FROM unnest(%s::text[]) AS name", ([f"t{i:04d}" for i in range(args.targets)],))
            version = admin.execute("SHOW server_version").fetchone()[0]
            results: dict = {}
            for rtt in args.rtt_ms:
                relay = DelayRelay(cluster.port, rtt / 1000) if rtt else None
                relays += [relay] if relay else []
                per_mode = {}
                for mode in MODES:
                    db = f"store_{mode.replace('-', '_')}_{int(rtt * 1000)}us"
                    admin.execute(f"CREATE DATABASE {db} TEMPLATE store_template")
                    dsn = psycopg.conninfo.make_conninfo(cluster.dsn_for(db), port=relay.port if relay else cluster.port,
                                                         options="-c pg_stat_statements.track=top")
                    delivery = (Delivery if mode == "grouped" else PerBatch)(dsn, Spool(base / f"spool-{db}"))
                    delivery.fast_path = mode == "grouped"
                    group_size = delivery.max_group
                    per_mode[mode] = {"db": db, "delivery": delivery, "rounds": []}
                for r, batches in enumerate(rounds):
                    order = MODES if r % 2 == 0 else MODES[::-1]
                    for mode in order:
                        m = per_mode[mode]
                        m["rounds"].append(deliver_round(m["delivery"], batches, admin, m["db"]))
                        log(f"rtt {rtt} ms, round {r + 1}, {mode}: {m['rounds'][-1]['batches_per_s']:,.0f} batches/s, "
                            f"{m['rounds'][-1]['statements_per_batch']:.2f} statements/batch")
                out = {}
                for mode, m in per_mode.items():
                    delivery = m["delivery"]
                    assert delivery.refused_groups == 0 and not list((base / f"spool-{m['db']}").glob("rejected/*"))
                    steady = m["rounds"][1:] or m["rounds"]
                    out[mode] = {k: statistics.median(x[k] for x in steady)
                                 for k in ("batches_per_s", "statements_per_batch", "client_cpu_ms_per_batch",
                                           "store_cpu_ms_per_batch", "wall_s")}
                    out[mode]["cold_round"] = m["rounds"][0]
                    out[mode]["stored"] = check_store(cluster.dsn_for(m["db"]))
                    delivery._sink.conn.close()
                assert out["grouped"]["stored"] == out["per-batch"]["stored"], (out["grouped"]["stored"], out["per-batch"]["stored"])
                out["speedup"] = out["grouped"]["batches_per_s"] / out["per-batch"]["batches_per_s"]
                out["statement_ratio"] = out["per-batch"]["statements_per_batch"] / out["grouped"]["statements_per_batch"]
                results[f"{rtt:g}"] = out
    finally:
        for relay in relays:
            relay.close()
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)

    batches_per_round = len(rounds[0])
    doc = {"targets": args.targets, "rounds": args.rounds, "batches_per_round": batches_per_round,
           "batches_per_target_cycle": batches_per_round // args.targets, "group_size": group_size,
           "store_version": version, "cpus": os.cpu_count(),
           "cycle": [{"source": b.source, "size": b.rows if isinstance(b, QueryStatsBatch)
                      else len(getattr(b, "samples", None) or getattr(b, "rows", None) or [])}
                     for b in template] + [{"source": "wait_samples", "size": 8}],
           "rtt_ms": results}
    out_path = Path(__file__).parent / "results" / "delivery-throughput.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"delivery of {args.targets} targets' full cycles ({batches_per_round:,} batches a round, groups of "
          f"{doc['group_size']}), PostgreSQL {version}; medians of {max(1, args.rounds - 1)} steady rounds")
    print(f"{'RTT':>6} {'path':<10}{'batches/s':>11}{'statements/batch':>18}{'client CPU ms/batch':>21}"
          f"{'store CPU ms/batch':>20}")
    for rtt, out in results.items():
        for mode in MODES:
            m = out[mode]
            print(f"{rtt + ' ms':>6} {mode:<10}{m['batches_per_s']:>11,.0f}{m['statements_per_batch']:>18.2f}"
                  f"{m['client_cpu_ms_per_batch']:>21.3f}{m['store_cpu_ms_per_batch']:>20.3f}")
        print(f"{'':>6} grouped / per-batch: {out['speedup']:.1f}x batches/s, "
              f"{out['statement_ratio']:.1f}x fewer statements")


if __name__ == "__main__":
    main()
