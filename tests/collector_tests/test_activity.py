"""Wait-event sampling, blocking chains and long idle-in-transaction sessions
(collector/activity.py) on real PostgreSQL 15-18 targets with real lock waits, delivered
through Sink.deliver into pganalytics.ingest_wait_samples()/ingest_lock_waits()."""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pganalytics.collector import target
from pganalytics.collector.activity import ActivitySampler, chain_roots
from pganalytics.collector.batch import RowsBatch
from pganalytics.collector.sink import Sink

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
WAIT_S = 15  # every wait in these tests is bounded by this


# --- pure functions, no database ------------------------------------------------------------

def test_chain_roots():
    # 4 waits on 3, which waits on 1 and 2 (neither waits): both are roots, 2 hops away
    blockers = {4: [3], 3: [1, 2]}
    assert chain_roots(4, blockers) == ([1, 2], 2)
    assert chain_roots(3, blockers) == ([1, 2], 1)
    # a cycle (deadlock not yet detected) has no root; pid 0 is a prepared transaction
    assert chain_roots(5, {5: [6], 6: [5]}) == ([], None)
    assert chain_roots(7, {7: [0]}) == ([0], 1)
    assert chain_roots(8, {8: []}) == ([], None)


# --- real targets -------------------------------------------------------------------------

@dataclass
class Scene:
    major: str
    dsn: str
    dbname: str
    holder_conn: psycopg.Connection  # A: LOCK TABLE t ACCESS EXCLUSIVE, then idle in transaction
    holder: int = 0
    plain: int = 0                   # B: SELECT * FROM t (waits during parse: no queryid yet)
    func: int = 0                    # C: SELECT count_t() (waits inside the function: has a queryid)
    middle: int = 0                  # X: holds t2, waits for t
    tail: int = 0                    # Y: waits for t2 (held by X): chain Y -> X -> A
    threads: list = field(default_factory=list)

    def release(self) -> None:
        """End A's transaction and let every waiter finish (bounded); safe to call twice."""
        if not self.holder_conn.closed:
            self.holder_conn.rollback()
            self.holder_conn.close()
        stuck = []
        for t, errors in self.threads:
            t.join(WAIT_S)
            if t.is_alive() or errors:
                stuck.append(errors or "still running")
        self.threads.clear()
        assert not stuck, f"waiter sessions did not finish cleanly: {stuck}"


def _wait_for(dsn, pids, deadline):
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            waiting = {r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = ANY(%s)",
                (list(pids),))}
            if waiting == set(pids):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backends {set(pids) - waiting} never waited on a lock")
            time.sleep(0.05)


def _waiter(scene, statements):
    """Run statements in one transaction on a new connection in a thread; return its pid once
    its last statement waits on a lock."""
    conn = psycopg.connect(scene.dsn, options=f"-c statement_timeout={WAIT_S * 1000}")
    pid = conn.info.backend_pid
    errors = []

    def run():
        try:
            for s in statements:
                conn.execute(s)
            conn.rollback()
        except psycopg.Error as exc:  # reported by Scene.release()
            errors.append(exc)
        finally:
            conn.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    scene.threads.append((t, errors))
    _wait_for(scene.dsn, [pid], time.monotonic() + WAIT_S)
    return pid


@contextmanager
def lock_scene(major, admin):
    name = f"pga_act_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(admin, dbname=name)
    scene = None
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
            conn.execute("CREATE TABLE t2 (id int PRIMARY KEY)")
            conn.execute("CREATE FUNCTION count_t() RETURNS bigint LANGUAGE plpgsql "
                         "AS $$ BEGIN RETURN (SELECT count(*) FROM t); END $$")
        holder = psycopg.connect(dsn, options=f"-c idle_in_transaction_session_timeout={WAIT_S * 4000}")
        scene = Scene(major, dsn, name, holder, holder.info.backend_pid)
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # implicit BEGIN: stays open
        scene.plain = _waiter(scene, ["SELECT * FROM t"])
        scene.func = _waiter(scene, ["SELECT count_t()"])
        scene.middle = _waiter(scene, ["LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE", "SELECT * FROM t"])
        scene.tail = _waiter(scene, ["SELECT * FROM t2"])
        yield scene
    finally:
        try:
            if scene is not None:
                scene.release()
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["15", "16", "17", "18"])
def scene(request, other_server):
    with lock_scene(request.param, other_server(request.param)) as s:
        yield s


@pytest.fixture
def store_iid(store_conn, scene):
    return store_conn.execute("SELECT pganalytics.register_instance('t', %s)", (scene.dsn,)).fetchone()[0]


def _queryid(dsn, text):
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query = %s", (text,)).fetchone()
        return row[0] if row else None


def test_wait_samples_count_lock_waits_and_are_delivered_once(scene, store_conn, store_iid):
    with target.connect(scene.dsn) as conn:
        sampler = ActivitySampler(conn, "t")
        ticks = 5
        costs = []
        for _ in range(ticks):
            started = time.perf_counter()
            assert sampler.tick() >= 5  # A, B, C, X, Y at least
            costs.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
        batch = sampler.drain()
        assert sampler.ticks == 0 and sampler.drain().rows == []
    print(f"PG {scene.major}: tick {min(costs):.2f}..{max(costs):.2f} ms round trip")

    assert isinstance(batch, RowsBatch) and batch.source == "wait_samples"
    mine = [r for r in batch.rows if r["datname"] == scene.dbname]
    assert all(r["ticks"] == ticks and r["interval_s"] > 0 for r in batch.rows)
    lock = [r for r in mine if (r["wait_event_type"], r["wait_event"], r["state"]) == ("Lock", "relation", "active")]
    # B, C, X and Y wait on relation locks through every tick: 4 sessions x ticks samples
    assert sum(r["samples"] for r in lock) == 4 * ticks
    # C waits inside the function, after its statement got a queryid: the one that
    # pg_stat_statements reports for it once C has run
    func_ids = {r["queryid"] for r in lock if r["queryid"] is not None}
    # B waits during parse analysis, before PostgreSQL computes its queryid
    assert any(r["queryid"] is None and r["samples"] >= ticks for r in lock)
    # A: idle in transaction (waiting for its client) on every tick
    assert [r["samples"] for r in mine if r["state"] == "idle in transaction"] == [ticks]
    # the sampler never counts itself, nor idle sessions
    assert not [r for r in mine if r["backend_type"] == "client backend" and r["wait_event_type"] is None]
    assert not [r for r in batch.rows if r["state"] == "idle"]

    sink = Sink(store_conn)
    batch.collected_at = T0
    assert sink.deliver(batch) == len(batch.rows)
    assert sink.deliver(batch) == 0  # re-delivery stores nothing
    stored = store_conn.execute(
        "SELECT sum(samples), min(ticks), max(ticks), count(*) FROM pganalytics.wait_samples "
        "WHERE instance_id = %s AND collected_at = %s AND datname = %s AND wait_event = 'relation'",
        (store_iid, T0, scene.dbname)).fetchone()
    assert stored == (4 * ticks, ticks, ticks, len(lock))
    assert store_conn.execute("SELECT row_count FROM pganalytics.snapshots WHERE source = 'wait_samples'"
                              ).fetchone()[0] == len(batch.rows)

    scene.release()
    assert func_ids == {_queryid(scene.dsn, "SELECT count_t()")}


def test_one_tick_a_cycle_at_random_takes_the_lock_chains(other_server):
    """With chains_every_ticks (the daemon: ticks per cycle) one tick of each cycle's, chosen at
    random, snapshots the lock chains, so snapshots do not share the cycles' fixed phase; the
    cycle then delivers that snapshot (take_chains) instead of taking its own."""
    with lock_scene("15", other_server("15")) as scene, target.connect(scene.dsn) as conn:
        sampler = ActivitySampler(conn, "t")
        sampler.tick()
        assert sampler.take_chains() is None  # off by default: the cycle takes them itself
        sampler.chains_every_ticks = 4
        taken_at = []
        for _ in range(12):  # twelve cycles of four ticks
            sampler.drain()
            for k in range(4):
                before = sampler._chains
                sampler.tick()
                if before is None and sampler._chains is not None:
                    taken_at.append(k)
            chains = sampler.take_chains()
            assert chains is not None and chains.source == "lock_waits"
            assert {r["pid"] for r in chains.rows if r["kind"] == "lock_wait"} >= {scene.plain, scene.func, scene.tail}
            assert sampler.take_chains() is None  # delivered once
        assert len(taken_at) == 12  # one snapshot a cycle, never two
        assert len(set(taken_at)) >= 2, taken_at  # at varying ticks (all at one: p = 4 * 4**-12)


def test_lock_chains_and_idle_sessions(scene, store_conn, store_iid):
    with target.connect(scene.dsn) as conn:
        started = time.perf_counter()
        batch = ActivitySampler(conn, "t", idle_xact_threshold_s=0).lock_waits()
        cost_ms = (time.perf_counter() - started) * 1000
        quiet = ActivitySampler(conn, "t").lock_waits()  # default threshold 60 s
    print(f"PG {scene.major}: lock_waits {cost_ms:.2f} ms round trip")

    assert batch.source == "lock_waits"
    waits = {r["pid"]: r for r in batch.rows if r["kind"] == "lock_wait"}
    assert {scene.plain, scene.func, scene.middle, scene.tail} <= set(waits)
    for pid in (scene.plain, scene.func, scene.middle, scene.tail):
        w = waits[pid]
        assert w["root_blocker_pid"] == scene.holder and w["root_blocker_pids"] == [scene.holder]
        assert w["root_blocker_state"] == "idle in transaction"
        assert w["root_blocker_xact_age_s"] > 0 and w["lock_wait_s"] > 0
        assert w["wait_event_type"] == "Lock" and w["wait_event"] == "relation"
        assert w["datname"] == scene.dbname
    assert waits[scene.plain]["blocking_pids"] == [scene.holder] and waits[scene.plain]["chain_depth"] == 1
    assert waits[scene.func]["queryid"] is not None and waits[scene.plain]["queryid"] is None
    # Y waits for X (holding t2), X waits for A: Y's root is A, two hops away
    assert waits[scene.tail]["blocking_pids"] == [scene.middle] and waits[scene.tail]["chain_depth"] == 2
    # ACCESS EXCLUSIVE locks are WAL-logged for standbys, so X (holding t2) has an xid; B has none
    assert waits[scene.middle]["xid_age"] >= 0 and waits[scene.plain]["xid_age"] is None
    assert waits[scene.plain]["xmin_age"] >= 0

    idle = {r["pid"]: r for r in batch.rows if r["kind"] == "idle_in_transaction"}
    assert scene.holder in idle
    a = idle[scene.holder]
    assert a["state"] == "idle in transaction" and a["xact_age_s"] >= a["state_age_s"] >= 0
    assert a["usename"] == "postgres" and a["datname"] == scene.dbname
    assert not [r for r in quiet.rows if r["kind"] == "idle_in_transaction" and r["pid"] == scene.holder]
    assert {r["pid"] for r in quiet.rows if r["kind"] == "lock_wait"} >= set(waits)

    sink = Sink(store_conn)
    batch.collected_at = T0
    assert sink.deliver(batch) == len(batch.rows)
    assert sink.deliver(batch) == 0
    rows = store_conn.execute(
        "SELECT kind, pid, root_blocker_pid, chain_depth, blocking_pids FROM pganalytics.lock_waits "
        "WHERE instance_id = %s AND collected_at = %s ORDER BY kind, pid", (store_iid, T0)).fetchall()
    assert len(rows) == len(batch.rows)
    assert ("lock_wait", scene.tail, scene.holder, 2, [scene.middle]) in rows
    assert ("idle_in_transaction", scene.holder, None, None, None) in rows


# --- store-side validation (no target) -------------------------------------------------------

@pytest.mark.parametrize("source, rows, message", [
    ("wait_samples", {"a": 1}, "rows must be a JSON array"),
    ("wait_samples", [{"backend_type": "client backend", "samples": 0, "ticks": 3}], "row 1 is not an object with whole numbers"),
    ("wait_samples", [{"samples": 2}], "row 1 is not an object"),
    ("wait_samples", [{"samples": 1, "ticks": 1, "queryid": "x"}], "numeric queryid"),
    ("wait_samples", [{"samples": 1, "ticks": 1}, {"samples": 2, "ticks": 1}], "occurs twice"),
    ("lock_waits", [{"kind": "lock_wait", "pid": 1}, {"kind": "blocked", "pid": 2}], "row 2 needs kind"),
    ("lock_waits", [{"kind": "lock_wait", "pid": 1.5}], "whole-number pid"),
    ("lock_waits", [{"kind": "lock_wait", "pid": 1, "blocking_pids": 7}], "arrays for blocking_pids"),
    ("lock_waits", [{"kind": "lock_wait", "pid": 1}, {"kind": "lock_wait", "pid": 1}], "occurs twice"),
])
def test_ingest_rejects_bad_rows(store_conn, source, rows, message):
    iid = store_conn.execute("SELECT pganalytics.register_instance('v', 'host=x')").fetchone()[0]
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute(f"SELECT pganalytics.ingest_{source}(%s, %s, %s)",
                           (iid, T0, psycopg.types.json.Jsonb(rows)))
    assert store_conn.execute("SELECT count(*) FROM pganalytics.snapshots").fetchone()[0] == 0


def test_empty_interval_is_recorded_in_the_ledger(store_conn):
    iid = store_conn.execute("SELECT pganalytics.register_instance('v', 'host=x')").fetchone()[0]
    sink = Sink(store_conn)
    assert sink.deliver(RowsBatch("v", "wait_samples", T0, [])) == 0
    assert sink.deliver(RowsBatch("v", "lock_waits", T0, [])) == 0
    assert store_conn.execute("SELECT count(*) FROM pganalytics.snapshots WHERE instance_id = %s",
                              (iid,)).fetchone()[0] == 2


def test_the_collectors_own_sessions_are_not_sampled(databases):
    """A store on the monitored server gets the collector's COPY and MERGE every cycle: its
    sessions (application_name pganalytics-collector) are not the load being sampled."""
    dsn = databases.create(prefix="pga_own")
    started = threading.Barrier(3)

    def sleeper(name):
        with psycopg.connect(dsn, autocommit=True, application_name=name) as conn:
            started.wait()
            conn.execute("SELECT pg_sleep(1.5)")

    threads = [threading.Thread(target=sleeper, args=(n,)) for n in ("pganalytics-collector", "app")]
    for t in threads:
        t.start()
    with psycopg.connect(dsn, autocommit=True) as conn:
        sampler = ActivitySampler(conn, "t")
        started.wait()
        time.sleep(0.3)
        for _ in range(3):
            sampler.tick()
        rows = sampler.drain().rows
    for t in threads:
        t.join()
    dbname = conninfo_to_dict(dsn)["dbname"]
    sleeping = [r for r in rows if r["wait_event"] == "PgSleep" and r["datname"] == dbname]
    assert sum(r["samples"] for r in sleeping) == 3  # the app's session at each tick, not the collector's


@pytest.mark.parametrize("name, counted", [("pganalytics-collector", False), ("pganalytics maintain", False),
                                           ("app", True)])
def test_the_activity_gauges_leave_the_collectors_own_sessions_out(databases, name, counted):
    """A long delivery or maintain() on a store sharing the monitored server is not the workload's
    long transaction or running statement; its connection slot still counts."""
    from pganalytics.collector.sources.base import pick_sql
    from pganalytics.collector.sources.instance import ACTIVITY

    dsn = databases.create(prefix="pga_own")
    began = threading.Event()

    def long_statement():
        with psycopg.connect(dsn, application_name=name) as conn:  # a transaction, open 2.5 s
            conn.execute("SELECT pg_current_xact_id()")
            began.set()
            conn.execute("SELECT pg_sleep(2.5)")

    worker = threading.Thread(target=long_statement)
    worker.start()
    try:
        assert began.wait(WAIT_S)
        time.sleep(1.5)
        with psycopg.connect(dsn, autocommit=True) as conn:
            sql = pick_sql(ACTIVITY, conn.info.server_version)
            assert sql is not None
            cur = conn.execute(sql)
            row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    finally:
        worker.join()
    assert row["client_backends"] >= 1  # the slot, whoever holds it
    if counted:
        assert row["active"] >= 1 and row["oldest_query_age_s"] >= 1.0 and row["oldest_xact_age_s"] >= 1.0
    else:
        assert (row["oldest_query_age_s"] or 0.0) < 1.0 and (row["oldest_xact_age_s"] or 0.0) < 1.0, row
