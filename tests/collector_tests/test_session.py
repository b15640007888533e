"""One kept connection per target: cycles and wait-event ticks share it (no backend started
per cycle), a stale one is replaced without reporting the target down, a target removed by a
reload closes its old connection, and query texts of a failed cycle are sent again."""
from __future__ import annotations

import random
import statistics
import threading
import time

import psycopg
import pytest

from pganalytics import localpg
from pganalytics.collector import config
from pganalytics.collector.batch import QueryStatsBatch
from pganalytics.collector.cycle import run_cycle
from pganalytics.collector.daemon import Collector, _next, _sample_at
from pganalytics.collector.session import TargetSession

from .waiting import wait_for


def collector_backends(dsn: str) -> list[tuple[int, str]]:
    """(pid, datname) of the collector's connections on the target's server."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT pid, datname FROM pg_stat_activity "
                            "WHERE application_name = 'pganalytics-collector' ORDER BY pid").fetchall()


@pytest.fixture
def target_dsn(databases):
    dsn = databases.create(prefix="session_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return dsn


class TickCounting(Collector):
    ticks = 0

    def _tick(self, state):
        done = super()._tick(state)
        self.ticks += done  # one tick per target at a time: no race with one target
        return done


def test_daemon_keeps_one_backend_per_target_for_cycles_and_ticks(store_dsn, target_dsn, tmp_path):
    dbname = psycopg.conninfo.conninfo_to_dict(target_dsn)["dbname"]
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"interval_s": 0.3, "slow_interval_s": 0.6, "sample_interval_s": 0.1,
                                       "spool_dir": str(tmp_path)},
                         "targets": [{"name": "kept", "conn": target_dsn}]})
    collector = TickCounting(conf)
    runner = threading.Thread(target=collector.run)
    runner.start()
    try:
        state = collector.targets["kept"]
        wait_for(lambda: state.cycles >= 2, what="two cycles")
        first = [pid for pid, db in collector_backends(target_dsn) if db == dbname]
        # ticks run beside cycles: under load the 8 cycles can come before 10 ticks
        wait_for(lambda: state.cycles >= 8 and collector.ticks >= 10, what="more cycles (slow ones included) and ticks")
        later = [pid for pid, db in collector_backends(target_dsn) if db == dbname]
    finally:
        collector.request_stop()
        runner.join(30)
    assert len(first) == 1 and later == first  # the same single backend all along
    with psycopg.connect(store_dsn) as conn:
        plans = conn.execute("SELECT count(*) FROM pganalytics.snapshots WHERE source = 'plans'").fetchone()[0]
    assert plans >= 2  # slow cycles (plans included) ran on the kept connection too
    assert collector.ticks >= 10  # ~6 cycles' worth at 3 ticks per cycle interval
    assert [pid for pid, db in collector_backends(target_dsn) if db == dbname] == []  # stop closes it


def _duty_seen(tick_times: list[float], period: float, held: float) -> float:
    """The share of ticks that see a lock held for `held` s of every `period` s."""
    return sum((t % period) < held for t in tick_times) / len(tick_times)


def test_jittered_ticks_see_a_lock_held_once_a_second_at_its_real_share():
    # The lab's lock fault: EXCLUSIVE held 0.6 s of every ~1.004 s (LOCK + COMMIT take a few
    # ms). Ticks at a fixed 1 s rate keep one phase for minutes and see it always or never.
    period, held, interval, rng = 1.004, 0.6, 1.0, random.Random(7)
    slots, slot = [], 0.95  # a start phase in the unlocked 0.4 s (it drifts 4 ms a tick)
    for _ in range(60):
        slots.append(slot)
        slot = _next(slot, interval, now=slot)
    assert _duty_seen(slots, period, held) < 0.2  # fixed phase: the lock mostly unseen
    jittered = [_sample_at(s, interval, rng) for s in slots]
    assert abs(_duty_seen(jittered, period, held) - held) < 0.15  # 60 samples: sd ~0.06
    assert all(s <= t < s + interval for s, t in zip(slots, jittered))  # one per interval


class TickTiming(Collector):
    def __init__(self, conf):
        super().__init__(conf)
        self.times: list[float] = []

    def _tick(self, state):
        self.times.append(time.monotonic())
        return super()._tick(state)


def test_daemon_ticks_at_a_random_phase_of_each_interval(store_dsn, target_dsn, tmp_path):
    interval = 0.2
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"interval_s": 1, "slow_interval_s": 2, "sample_interval_s": interval,
                                       "spool_dir": str(tmp_path)},
                         "targets": [{"name": "phases", "conn": target_dsn}]})
    collector = TickTiming(conf)
    runner = threading.Thread(target=collector.run)
    runner.start()
    try:
        wait_for(lambda: len(collector.times) >= 30, what="30 ticks")
        # five ticks a 1 s cycle: one of them, at random, takes the lock chains
        assert collector.targets["phases"].session.sampler.chains_every_ticks == 5
    finally:
        collector.request_stop()
        runner.join(30)
    gaps = [b - a for a, b in zip(collector.times, collector.times[1:])]
    # Still one tick per interval on average; fixed-rate ticks would be ~0.2 s apart each
    # (sd of a few ms), uniform phases give gaps of sd interval / sqrt(6) ~ 0.08 s.
    assert 0.8 * interval < statistics.mean(gaps) < 1.5 * interval
    assert statistics.stdev(gaps) > 0.2 * interval


def test_stale_kept_connection_is_replaced_not_reported_down(tmp_path):
    server = localpg.LocalCluster(tmp_path / "t", localpg.free_port(), localpg.find_bindir())
    server.init()
    server.start()
    try:
        localpg.wait_ready(server.dsn)
        session = TargetSession("stale", server.dsn)
        with session.lock:
            assert run_cycle("stale", server.dsn, frozenset({"fast"}), session=session).up
            old_pid = session.connection()[0].info.backend_pid
        server.stop("immediate")  # the kept connection dies without the collector noticing
        server.start()
        localpg.wait_ready(server.dsn)
        with session.lock:
            report = run_cycle("stale", server.dsn, frozenset({"fast"}), session=session)
            new_pid = session.connection()[0].info.backend_pid
        assert report.up and report.error is None
        assert new_pid != old_pid
        server.stop("fast")
        with session.lock:
            down = run_cycle("stale", server.dsn, frozenset({"fast"}), session=session)
        assert not down.up and "cannot connect" in down.error
        session.discard()
    finally:
        server.destroy()


def test_a_tick_never_waits_for_a_running_cycle(target_dsn):
    session = TargetSession("t", target_dsn)
    assert session.tick() and session.sampler.ticks == 1
    with session.lock:  # as a cycle does
        assert not session.tick()
    assert session.sampler.ticks == 1  # skipped, not counted
    session.discard()
    assert session.tick() and session.sampler.ticks == 2  # reconnects; counts survive
    session.discard()



def test_texts_of_a_failed_cycle_are_sent_again(target_dsn):
    # A statement on a table of its own: its queryid is no other test's (a queryid ignores
    # constants and column aliases, so e.g. `SELECT 1 AS marker` shares one with `SELECT 1`).
    marker = "SELECT count(*) FROM session_text_marker"
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE session_text_marker (k int)")
        conn.execute(marker)
    memory: dict = {}
    session = TargetSession("t", target_dsn)

    def texts(report):
        batch = next(b for b in report.batches if isinstance(b, QueryStatsBatch))
        return {q for _, q in batch.texts if "session_text_marker" in q}

    # The target connection is killed in the middle of every cycle attempt, after
    # pg_stat_statements (texts included) was read.
    import pganalytics.collector.cycle as cycle_mod
    real, kills = cycle_mod.host_batch, []

    def kill_then_sample(sampler, instance, now):
        with psycopg.connect(target_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (session.connection()[0].info.backend_pid,))
        kills.append(1)
        return real(sampler, instance, now)

    cycle_mod.host_batch = kill_then_sample
    try:
        with session.lock:
            session.connection()  # a kept connection: its failure is first taken as staleness
            failed = run_cycle("t", target_dsn, frozenset({"fast"}), memory=memory, session=session)
    finally:
        cycle_mod.host_batch = real
    assert len(kills) == 2  # retried once on a new connection, which failed too
    assert not failed.up and "lost the connection" in failed.error
    assert not memory.get("known_texts")  # nothing of the failed cycle counts as sent
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute(marker)  # present, even if pg_stat_statements evicted it since
    with session.lock:
        sent = run_cycle("t", target_dsn, frozenset({"fast"}), memory=memory, session=session)
        again = run_cycle("t", target_dsn, frozenset({"fast"}), memory=memory, session=session)
    assert sent.up and texts(sent)  # sent by the next cycle that completes...
    assert again.up and not texts(again)  # ...and only once
    session.discard()


def test_reload_moving_a_target_closes_its_old_connection(store_dsn, target_dsn, databases, tmp_path):
    old, new = databases.create(prefix="session_old"), databases.create(prefix="session_new")
    old_db, new_db = (psycopg.conninfo.conninfo_to_dict(d)["dbname"] for d in (old, new))
    body = {"store": {"dsn": store_dsn},
            "collector": {"interval_s": 0.3, "slow_interval_s": 1, "sample_interval_s": 0.1,
                          "spool_dir": str(tmp_path)},
            "targets": [{"name": "stay", "conn": target_dsn}, {"name": "moves", "conn": old}]}
    collector = TickCounting(config.parse(body))
    runner = threading.Thread(target=collector.run)
    runner.start()

    def dbs():
        return [db for _, db in collector_backends(target_dsn)]
    try:
        wait_for(lambda: collector.targets["moves"].cycles >= 1, what="the target to be collected")
        assert old_db in dbs()
        body["targets"][1]["conn"] = new
        collector.config = config.parse(body)
        collector.request_reload()
        wait_for(lambda: new_db in dbs() and old_db not in dbs(), what="the move to a new connection")
        stay = collector.targets["stay"]
        cycles = stay.cycles
        wait_for(lambda: stay.cycles > cycles, what="the other target to go on")
        # turning sampling off by a reload stops ticks; turning it on again restarts them
        body["collector"]["sample_interval_s"] = 0
        collector.config = config.parse(body)
        collector.request_reload()
        time.sleep(0.5)
        before = collector.ticks
        time.sleep(0.6)
        assert collector.ticks == before
        body["collector"]["sample_interval_s"] = 0.1
        collector.config = config.parse(body)
        collector.request_reload()
        wait_for(lambda: collector.ticks >= before + 3, what="ticks to resume")
    finally:
        collector.request_stop()
        runner.join(30)
