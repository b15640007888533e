"""Every source on real PostgreSQL 15, 16, 17 and 18 targets running a small workload."""
from __future__ import annotations

import time

import psycopg
import pytest

from pganalytics.collector import sources
from pganalytics.collector.cycle import run_cycle
from pganalytics.collector.run import deliver_report
from pganalytics.collector.sink import Sink

VERSIONS = ["15", "16", "17", "18"]
# Sources that legitimately return no rows on a lone server without replicas or slots.
MAY_BE_EMPTY = {"pg_stat_replication", "pg_replication_slots"}


def workload(dsn: str, pgss_version: str | None = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
        conn.execute("CREATE EXTENSION pg_stat_statements" +
                     (f" VERSION '{pgss_version}'" if pgss_version else ""))
        conn.execute("DROP TABLE IF EXISTS orders")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer int, total numeric)")
        conn.execute("CREATE INDEX ON orders (customer)")
        conn.execute("INSERT INTO orders SELECT g, g % 100, g * 1.1 FROM generate_series(1, 5000) g")
        conn.execute("DELETE FROM orders WHERE id % 7 = 0")
        conn.execute("ANALYZE orders")
        for i in range(20):
            conn.execute("SELECT sum(total) FROM orders WHERE customer = %s", (i,))
        conn.execute("SELECT pg_stat_force_next_flush()")  # make this backend's counts visible now


@pytest.mark.parametrize("major", VERSIONS)
def test_every_source_returns_sane_rows(other_server, major):
    dsn = other_server(major)
    workload(dsn)
    report = run_cycle(f"pg{major}", dsn)
    assert report.up and report.server_version_num // 10000 == int(major)
    got = {b.source: b for b in report.batches}
    expected_missing = {"pg_stat_io"} if major == "15" else set()
    assert set(report.unavailable) == expected_missing, report.unavailable
    if major == "15":
        assert "PostgreSQL 16" in report.unavailable["pg_stat_io"]
    for source in sources.ALL:
        if source.name in expected_missing:
            continue
        batch = got[source.name]
        if source.name not in MAY_BE_EMPTY:
            assert batch.samples, f"{source.name} returned nothing on {major}"
        for metric, labels, kind, value in batch.samples:
            assert metric.startswith(source.metric_prefix + "_")
            assert kind in ("counter", "gauge")
            if kind == "counter":
                assert value >= 0, (metric, labels, value)
    tables = {(m, lab.get("relname")): v for m, lab, _, v in got["pg_stat_user_tables"].samples}
    assert tables[("pg_table_n_live_tup", "orders")] > 4000
    assert tables[("pg_table_seq_scan", "orders")] >= 0
    assert got["query_stats"].rows > 0
    checkpointer = {m for m, *_ in got["pg_stat_checkpointer"].samples}
    assert "pg_checkpointer_num_timed" in checkpointer  # same name on 15/16 (pg_stat_bgwriter)
    if major != "15":
        io = {(m, lab["backend_type"], lab["object"], lab["context"]) for m, lab, _, _ in got["pg_stat_io"].samples}
        assert ("pg_io_read_bytes", "client backend", "relation", "normal") in io


@pytest.mark.parametrize("major", VERSIONS)
def test_cycle_delivers_into_the_store(other_server, store_dsn, major):
    dsn = other_server(major)
    workload(dsn)
    with psycopg.connect(store_dsn, autocommit=True) as store:
        store.execute("SELECT pganalytics.register_instance(%s, %s)", (f"pg{major}", dsn))
        result = deliver_report(Sink(store), run_cycle(f"pg{major}", dsn))
        assert result.ok and result.query_entries > 0 and result.samples > 0
        metrics = {r[0] for r in store.execute("SELECT DISTINCT metric FROM pganalytics.series")}
        assert {"pg_up", "pg_database_xact_commit", "pg_table_n_dead_tup", "pg_wal_wal_bytes"} <= metrics
        dead = store.execute(
            "SELECT s.value FROM pganalytics.samples s JOIN pganalytics.series r USING (instance_id, series_id) "
            "WHERE r.metric = 'pg_table_n_dead_tup' AND r.labels->>'relname' = 'orders'").fetchone()
        assert dead is not None and dead[0] >= 0
        plans = store.execute("SELECT count(*) FROM pganalytics.plan_nodes n "
                              "JOIN pganalytics.query_texts t USING (instance_id, queryid) "
                              "WHERE t.query LIKE 'SELECT sum(total) FROM orders%%' "
                              "AND n.relation_name = 'orders'").fetchone()[0]
        assert plans >= 1  # the workload's query got a generic plan at the slow cadence


def test_pg18_with_pg_stat_statements_still_at_1_10(other_server, store_dsn):
    """Columns are chosen by what the extension has, not by the server version."""
    dsn = other_server("18")
    workload(dsn, pgss_version="1.10")
    report = run_cycle("pg18old", dsn)
    assert "pg_stat_statements" not in report.unavailable
    batch = next(b for b in report.batches if b.source == "query_stats")
    with psycopg.connect(store_dsn, autocommit=True) as store:
        store.execute("SELECT pganalytics.register_instance('pg18old', %s)", (dsn,))
        assert Sink(store).deliver(batch) == batch.rows > 0
        assert store.execute("SELECT count(*) FROM pganalytics.query_stats "
                             "WHERE stats_since IS NULL").fetchone()[0] == batch.rows


def test_settings_changes_are_kept_as_history(other_server, store_dsn):
    dsn = other_server("17")
    with psycopg.connect(store_dsn, autocommit=True) as store:
        store.execute("SELECT pganalytics.register_instance('cfg', %s)", (dsn,))
        sink = Sink(store)

        def cycle():
            return deliver_report(sink, run_cycle("cfg", dsn, frozenset({"slow"})))

        cycle()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET work_mem = '32MB'")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        cycle()
        cycle()  # unchanged: no new rows
        rows = store.execute("SELECT setting, valid_to IS NULL FROM pganalytics.settings_history "
                             "WHERE name = 'work_mem' ORDER BY valid_from").fetchall()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET work_mem")
            conn.execute("SELECT pg_reload_conf()")
    assert rows == [("32768", True)]
    own = store_dsn  # the collector's own session settings are never recorded
    with psycopg.connect(own) as store:
        assert store.execute("SELECT count(*) FROM pganalytics.settings_history "
                             "WHERE name IN ('statement_timeout', 'application_name')").fetchone()[0] == 0


def test_index_definitions_are_kept_as_history(other_server, store_dsn):
    """A dropped index closes its row (diagnose() reads it as dropped, with its definition);
    a rebuilt one with another definition opens a new row; an unchanged snapshot adds none."""
    dsn = other_server("16")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ix")
        conn.execute("CREATE TABLE ix (id int PRIMARY KEY, a int, b text)")
        conn.execute("CREATE INDEX ix_a ON ix (a)")
        conn.execute("CREATE INDEX ix_lower_b ON ix (lower(b)) INCLUDE (a)")
    with psycopg.connect(store_dsn, autocommit=True) as store:
        store.execute("SELECT pganalytics.register_instance('ixh', %s)", (dsn,))
        sink = Sink(store)

        def cycle():
            return deliver_report(sink, run_cycle("ixh", dsn, frozenset({"slow"})))

        cycle()
        cycle()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP INDEX ix_a")
            conn.execute("DROP INDEX ix_lower_b")
            conn.execute("CREATE INDEX ix_lower_b ON ix (lower(b))")
        cycle()
        rows = store.execute("SELECT indexrelname, columns, is_primary, valid_to IS NULL "
                             "FROM pganalytics.index_definitions WHERE relname = 'ix' "
                             "ORDER BY indexrelname, valid_from").fetchall()
    assert rows == [("ix_a", ["a"], False, False),
                    ("ix_lower_b", ["lower(b)"], False, False),
                    ("ix_lower_b", ["lower(b)"], False, True),
                    ("ix_pkey", ["id"], True, True)]


def test_the_last_index_of_a_database_dropped_closes_its_row(other_server, store_dsn):
    """A database left without any index still says so (a one-row snapshot of its name), so the
    store sees its last index go: the drop diagnose() reads as a missing index."""
    base = other_server("16")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS pga_lastix")
        conn.execute("CREATE DATABASE pga_lastix")
    dsn = psycopg.conninfo.make_conninfo(base, dbname="pga_lastix")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_one (id int, k int)")
        conn.execute("CREATE INDEX only_one_k ON only_one (k)")
    with psycopg.connect(store_dsn, autocommit=True) as store:
        store.execute("SELECT pganalytics.register_instance('lastix', %s)", (dsn,))
        sink = Sink(store)
        deliver_report(sink, run_cycle("lastix", dsn, frozenset({"slow"})))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP INDEX only_one_k")
        deliver_report(sink, run_cycle("lastix", dsn, frozenset({"slow"})))
        rows = store.execute("SELECT datname, indexrelname, valid_to IS NOT NULL FROM pganalytics.index_definitions "
                             "WHERE instance_id = (SELECT instance_id FROM pganalytics.instances WHERE name = 'lastix')"
                             ).fetchall()
    assert rows == [("pga_lastix", "only_one_k", True)]


@pytest.mark.parametrize("major", ["15", "18"])
def test_role_and_database_settings_are_read_by_a_monitor_role(other_server, major):
    """ALTER ROLE/DATABASE ... SET values are named setting@role:x, @db:y, @role:x/db:y;
    custom options (where applications keep secrets) are not read."""
    dsn = other_server(major)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role in ("pga_app", "pga_mon2"):
            conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute("CREATE ROLE pga_app")
        conn.execute("CREATE ROLE pga_mon2 LOGIN IN ROLE pg_monitor")
        db = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute("ALTER ROLE pga_app SET enable_indexscan = off")
        conn.execute("ALTER ROLE pga_app SET app.api_key = 'hunter2'")
        conn.execute(f"ALTER ROLE pga_app IN DATABASE {db} SET work_mem = '64kB'")
        conn.execute(f"ALTER DATABASE {db} SET random_page_cost = 2")
    try:
        mon = psycopg.conninfo.make_conninfo(dsn, user="pga_mon2")
        report = run_cycle(f"pg{major}", mon, frozenset({"slow"}))
        rows = {r["name"]: r for b in report.batches if b.source == "settings" for r in b.rows}
        assert rows["enable_indexscan@role:pga_app"]["setting"] == "off"
        assert rows[f"work_mem@role:pga_app/db:{db}"]["setting"] == "64kB"
        assert rows[f"random_page_cost@db:{db}"]["source"] == "database"
        assert not [n for n in rows if n.startswith("app.")]
        assert "hunter2" not in repr(rows)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {db} RESET random_page_cost")
            conn.execute("DROP ROLE pga_app")
            conn.execute("DROP ROLE pga_mon2")


@pytest.mark.parametrize("major", ["15", "18"])
def test_a_pg_monitor_only_role_is_enough(other_server, major):
    """Never superuser: with only pg_monitor every source is read, and what needs more (plans
    of application tables) is reported as unavailable with the reason."""
    dsn = other_server(major)
    workload(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS pga_mon_only")
        conn.execute("CREATE ROLE pga_mon_only LOGIN IN ROLE pg_monitor")
    mon = psycopg.conninfo.make_conninfo(dsn, user="pga_mon_only")
    report = run_cycle(f"mon{major}", mon)
    assert report.up
    assert set(report.unavailable) <= {"plans", "pg_stat_io"}, report.unavailable
    if "plans" in report.unavailable:
        assert "permission denied" in report.unavailable["plans"]
    got = {b.source: b for b in report.batches}
    assert got["query_stats"].rows > 0 and got["query_stats"].texts  # texts visible to pg_read_all_stats
    assert any(m == "pg_database_size_bytes" for m, *_ in got["pg_database_size"].samples)
