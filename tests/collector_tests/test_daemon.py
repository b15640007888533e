"""The collector daemon against real servers: a store outage loses nothing and counts nothing
twice; a target outage is recorded and retried; SIGTERM stops cleanly; SIGHUP reloads."""
from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from pganalytics import localpg, store
from pganalytics.collector import config
from pganalytics.collector.daemon import Collector

from .waiting import wait_for

MARKER = "SELECT count(*) FROM pga_marker WHERE k = %s"


@pytest.fixture
def target_dsn(databases):
    dsn = databases.create(prefix="daemon_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE pga_marker (k int)")
    return dsn


@pytest.fixture
def own_store():
    """A store on its own server, so the test can stop and restart it."""
    base = Path(tempfile.mkdtemp(prefix="pganalytics-store-"))
    cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir())
    cluster.init()
    cluster.start()
    localpg.wait_ready(cluster.dsn)
    store.upgrade(cluster.dsn)
    yield cluster
    cluster.destroy()


def marker_calls(dsn: str, collected: bool) -> int:
    """Executions of the marker query: per the target itself, or as the store's deltas add up."""
    with psycopg.connect(dsn) as conn:
        if not collected:
            return conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                "WHERE query LIKE 'SELECT count(*) FROM pga_marker%'").fetchone()[0]
        total = conn.execute(
            "SELECT coalesce(sum(d.calls), 0) FROM pganalytics.query_stat_deltas d "
            "JOIN pganalytics.query_texts t USING (instance_id, queryid) "
            "WHERE t.query LIKE 'SELECT count(*) FROM pga_marker%'").fetchone()[0]
        return total


def test_store_outage_loses_nothing_and_counts_nothing_twice(own_store, target_dsn, tmp_path):
    conf = config.parse({"store": {"dsn": own_store.dsn},
                         "collector": {"interval_s": 0.5, "slow_interval_s": 1, "workers": 2,
                                       "spool_dir": str(tmp_path / "spool")},
                         "targets": [{"name": "t1", "conn": target_dsn}]})
    collector = Collector(conf)
    runner = threading.Thread(target=collector.run)
    stop_workload = threading.Event()
    ran = []

    def workload():
        with psycopg.connect(target_dsn, autocommit=True) as conn:
            while not stop_workload.is_set():
                conn.execute(MARKER, (len(ran),))
                ran.append(1)
                time.sleep(0.01)

    # The first snapshot only sets the baseline: let it happen before any marker query runs.
    runner.start()
    wait_for(lambda: collector.delivery.delivered >= 3, what="first deliveries")
    worker = threading.Thread(target=workload)
    worker.start()
    time.sleep(2)
    own_store.stop("fast")
    wait_for(lambda: len(collector.spool) >= 6, what="batches spooled during the outage")
    own_store.start()
    wait_for(lambda: len(collector.spool) == 0, what="spool replayed")
    stop_workload.set()
    worker.join()
    executed = len(ran)
    # Let one more cycle see the final counters, then stop.
    wait_for(lambda: marker_calls(target_dsn, collected=False) >= executed, what="target counters")
    cycles_before = collector.targets["t1"].cycles
    wait_for(lambda: collector.targets["t1"].cycles >= cycles_before + 2, what="two more cycles")
    collector.request_stop()
    runner.join(30)
    assert not runner.is_alive()

    rejected = sorted((tmp_path / "spool").glob("rejected/*.reason"))
    assert collector.spool.dropped == 0
    assert not rejected, [r.read_text() for r in rejected]
    assert marker_calls(own_store.dsn, collected=True) == executed  # nothing lost, nothing twice
    with psycopg.connect(own_store.dsn) as conn:
        ledger = conn.execute(  # frames are their own ledger: those of the availability source's series
            "SELECT count(*) FROM pganalytics.sample_frames f JOIN pganalytics.sample_layouts l USING (instance_id, layout_id) "
            "JOIN pganalytics.series r ON r.instance_id = f.instance_id AND r.series_id = ANY (l.series_ids) "
            "WHERE r.metric = 'pg_up'").fetchone()[0]
        up = conn.execute("SELECT count(*) FROM pganalytics.samples s JOIN pganalytics.series r "
                          "USING (instance_id, series_id) WHERE r.metric = 'pg_up'").fetchone()[0]
    assert ledger == up == collector.targets["t1"].cycles


def test_target_down_is_recorded_and_backed_off(store_dsn, tmp_path):
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"interval_s": 0.2, "slow_interval_s": 1, "spool_dir": str(tmp_path)},
                         "targets": [{"name": "down", "conn": "host=127.0.0.1 port=1 dbname=x"}]})
    collector = Collector(conf)
    runner = threading.Thread(target=collector.run)
    runner.start()
    time.sleep(2.5)
    collector.request_stop()
    runner.join(30)
    state = collector.targets["down"]
    # 0.2 s interval with backoff 0.4, 0.8, 1.6 s...: far fewer attempts than 2.5 / 0.2
    assert 2 <= state.cycles <= 5 and state.failures == state.cycles
    with psycopg.connect(store_dsn) as conn:
        values = [r[0] for r in conn.execute(
            "SELECT s.value FROM pganalytics.samples s JOIN pganalytics.series r USING (instance_id, series_id) "
            "WHERE r.metric = 'pg_up'")]
    assert values and set(values) == {0.0} and len(values) == state.cycles


def test_sigterm_stops_cleanly_and_sighup_reloads(store_dsn, target_dsn, tmp_path):
    cfg_file = tmp_path / "collector.toml"
    body = (f'[store]\ndsn = "{store_dsn}"\n[collector]\ninterval_s = 0.5\nslow_interval_s = 1\n'
            f'spool_dir = "{tmp_path / "spool"}"\n'
            f'[[targets]]\nname = "first"\nconn = "{target_dsn}"\n')
    cfg_file.write_text(body)
    proc = subprocess.Popen([sys.executable, "-m", "pganalytics.cli", "collect", "--config", str(cfg_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def registered():
            with psycopg.connect(store_dsn) as conn:
                return {r[0] for r in conn.execute("SELECT name FROM pganalytics.instances i "
                                                   "WHERE EXISTS (SELECT FROM pganalytics.instance_seen s "
                                                   "WHERE s.instance_id = i.instance_id)")}
        wait_for(lambda: registered() == {"first"}, what="first target collected")
        cfg_file.write_text(body + f'[[targets]]\nname = "second"\nconn = "{target_dsn}"\n')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: registered() == {"first", "second"}, what="reloaded target collected")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "config reloaded" in out and "collector stopped" in out


def test_daemon_samples_wait_events_between_cycles(store_dsn, target_dsn, tmp_path):
    """Ticks every 0.2 s on a persistent connection; each cycle delivers the counts."""
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"interval_s": 1, "slow_interval_s": 5, "sample_interval_s": 0.2,
                                       "spool_dir": str(tmp_path)},
                         "targets": [{"name": "w", "conn": target_dsn}]})
    collector = Collector(conf)
    runner = threading.Thread(target=collector.run)
    with psycopg.connect(target_dsn, autocommit=True):
        runner.start()
        stop = threading.Event()

        def sleeper():
            with psycopg.connect(target_dsn, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute("SELECT pg_sleep(0.3)")

        thread = threading.Thread(target=sleeper)
        thread.start()
        time.sleep(3.5)
        stop.set()
        thread.join()
    collector.request_stop()
    runner.join(30)
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute("SELECT sum(samples), max(ticks) FROM pganalytics.wait_samples "
                            "WHERE wait_event = 'PgSleep'").fetchone()
    assert rows[0] is not None and rows[0] >= 5  # the sleeping session, seen on most ticks
    assert 2 <= rows[1] <= 8


def test_target_restart_and_reset_give_exact_deltas(store_dsn, tmp_path):
    """An immediate restart and a pg_stat_statements_reset() on a real target: intervals count
    exactly what ran, never a negative or huge delta."""
    from pganalytics.collector.cycle import run_cycle
    from pganalytics.collector.run import deliver_report
    from pganalytics.collector.sink import Sink

    target = localpg.LocalCluster(tmp_path / "target", localpg.free_port(), localpg.find_bindir())
    target.init()
    target.start()
    try:
        localpg.wait_ready(target.dsn)
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE TABLE pga_marker (k int)")
        with psycopg.connect(store_dsn, autocommit=True) as store_conn:
            store_conn.execute("SELECT pganalytics.register_instance('crashy', %s)", (target.dsn,))
            sink, memory = Sink(store_conn), {}

            def run(n):
                with psycopg.connect(target.dsn, autocommit=True) as conn:
                    for i in range(n):
                        conn.execute(MARKER, (i,))
                deliver_report(sink, run_cycle("crashy", target.dsn, memory=memory))

            run(0)
            run(50)
            target.stop("immediate")
            target.start()
            localpg.wait_ready(target.dsn)
            run(7)
            with psycopg.connect(target.dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")
            run(4)
            rows = store_conn.execute(
                "SELECT d.calls, d.after_reset FROM pganalytics.query_stat_deltas d "
                "JOIN pganalytics.query_texts t USING (instance_id, queryid) "
                "WHERE t.query LIKE 'SELECT count(*) FROM pga_marker%' ORDER BY d.collected_at").fetchall()
            negative = store_conn.execute(
                "SELECT count(*) FROM pganalytics.query_stat_deltas WHERE calls < 0 OR total_exec_time < 0 "
                "OR rows < 0").fetchone()[0]
    finally:
        target.destroy()
    # pg_stat_statements may keep its counters over the restart or lose them: either way the
    # interval shows the 7 executions; after the reset, the 4 are counted from zero.
    assert [r[0] for r in rows] == [50, 7, 4] and rows[-1][1] is True
    assert negative == 0


def test_grouped_delivery_keeps_each_snapshot_to_its_instance(store_dsn, target_dsn, tmp_path):
    """Two query_stats snapshots staged in ONE store transaction (grouped delivery) must not
    see each other's staged rows."""
    from pganalytics.collector.cycle import run_cycle
    from pganalytics.collector.delivery import Delivery
    from pganalytics.collector.spool import Spool

    with psycopg.connect(store_dsn, autocommit=True) as conn:
        for name in ("g1", "g2"):
            conn.execute("SELECT pganalytics.register_instance(%s, %s)", (name, target_dsn))
    batches = []
    for name in ("g1", "g2"):
        report = run_cycle(name, target_dsn, frozenset({"fast"}))
        batches += [b for b in report.batches if b.source == "query_stats"]
    delivery = Delivery(store_dsn, Spool(tmp_path))
    assert delivery._deliver(batches)
    assert not list(tmp_path.glob("rejected/*"))
    with psycopg.connect(store_dsn) as conn:
        per_instance = dict(conn.execute(
            "SELECT i.name, count(*) FROM pganalytics.query_stats q JOIN pganalytics.instances i "
            "USING (instance_id) GROUP BY i.name").fetchall())
    assert per_instance == {"g1": batches[0].rows, "g2": batches[1].rows}


def test_a_refused_batch_is_set_aside_and_the_rest_of_its_group_lands(store_dsn, tmp_path):
    from datetime import datetime, timezone

    from pganalytics.collector.batch import RowsBatch, SamplesBatch
    from pganalytics.collector.delivery import Delivery
    from pganalytics.collector.spool import Spool

    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance('r', 'service=r')")
    at = datetime(2026, 11, 25, tzinfo=timezone.utc)
    good = SamplesBatch("r", "availability", at, [("pg_up", {}, "gauge", 1.0)])
    bad = RowsBatch("r", "settings", at, [{"setting": "no name"}])
    delivery = Delivery(store_dsn, Spool(tmp_path))
    assert delivery._deliver([bad, good])
    reasons = [p.read_text() for p in tmp_path.glob("rejected/*.reason")]
    assert len(reasons) == 1 and "needs a \"name\"" in reasons[0]
    with psycopg.connect(store_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pganalytics.snapshots").fetchone()[0] == 0  # not the settings
        assert conn.execute("SELECT count(*) FROM pganalytics.samples").fetchone()[0] == 1  # the availability frame


def test_two_snapshots_of_one_target_in_one_group_give_exact_deltas(store_dsn, target_dsn, tmp_path):
    """A backlog (e.g. after an outage) delivers consecutive snapshots of one target in one
    transaction, staged by one COPY: each is folded in order, against the one before."""
    from pganalytics.collector.cycle import run_cycle
    from pganalytics.collector.delivery import Delivery
    from pganalytics.collector.spool import Spool

    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance('g', %s)", (target_dsn,))
    memory: dict = {}
    group = []
    for runs in (0, 5, 3):
        with psycopg.connect(target_dsn, autocommit=True) as conn:
            for i in range(runs):
                conn.execute(MARKER, (i,))
        group += [b for b in run_cycle("g", target_dsn, frozenset({"fast"}), memory=memory).batches
                  if b.source == "query_stats"]
    delivery = Delivery(store_dsn, Spool(tmp_path))
    assert delivery._deliver(group) and delivery.refused_groups == 0
    with psycopg.connect(store_dsn) as conn:
        calls = [r[0] for r in conn.execute(
            "SELECT d.calls FROM pganalytics.query_stat_deltas d "
            "JOIN pganalytics.query_texts t USING (instance_id, queryid) "
            "WHERE t.query LIKE 'SELECT count(*) FROM pga_marker%' ORDER BY d.collected_at")]
    assert calls == [5, 3]


def test_a_configured_target_registered_elsewhere_is_collected_from_the_registration(
        store_dsn, tmp_path, caplog):
    """The collector role cannot move a registered instance (only an admin can): a config
    entry whose conn differs from the store's registration is logged once, the admin's
    reference is used, and the other configured targets are registered as usual."""
    import logging
    import uuid

    from pganalytics.collector.sink import Sink

    role = f"pga_coll_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} NOLOGIN IN ROLE pganalytics_collector")
        admin.execute("SELECT pganalytics.register_instance('prod', 'service=prod-registered')")
    collector_dsn = psycopg.conninfo.make_conninfo(store_dsn, options=f"-c role={role}")
    conf = config.parse({"store": {"dsn": collector_dsn},
                         "collector": {"spool_dir": str(tmp_path)},
                         "targets": [{"name": "prod", "conn": "service=prod-elsewhere"},
                                     {"name": "fresh", "conn": "service=fresh"}]})
    collector = Collector(conf)
    try:
        with psycopg.connect(collector_dsn, autocommit=True) as conn, caplog.at_level(logging.ERROR):
            for _ in range(2):
                collector._sync_targets_with_store(Sink(conn))
        collector._apply_targets()
        assert collector.targets["prod"].conn == "service=prod-registered"
        assert collector.targets["fresh"].conn == "service=fresh"
        refusals = [r for r in caplog.records if "prod" in r.getMessage()]
        assert len(refusals) == 1 and "another connection reference" in refusals[0].getMessage()
        with psycopg.connect(store_dsn) as conn:
            assert dict(conn.execute("SELECT name, conn_ref FROM pganalytics.instances")) == {
                "prod": "service=prod-registered", "fresh": "service=fresh"}
    finally:
        for state in collector.targets.values():
            state.session.discard()
        collector._pool.shutdown()
        collector._tick_pool.shutdown()
        with psycopg.connect(store_dsn, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")
