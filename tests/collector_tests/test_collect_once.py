"""`pganalytics collect --once` against a real target (the harness server itself)."""
from __future__ import annotations

import re

import psycopg
import pytest

from pganalytics import cli
from pganalytics.collector import pgss, target
from pganalytics.collector.run import collect_once


@pytest.fixture
def target_dsn(databases):
    dsn = databases.create(prefix="target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        loaded = conn.execute("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'").fetchone()[0]
        if "pg_stat_statements" not in loaded:
            pytest.skip("the test server does not preload pg_stat_statements")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE work (id int PRIMARY KEY, v text)")
        for i in range(50):
            conn.execute("INSERT INTO work VALUES (%s, %s)", (i, f"v{i}"))
            conn.execute("SELECT v FROM work WHERE id = %s", (i,))
    return dsn


def test_collect_once_end_to_end(store_dsn, target_dsn, capsys):
    cli.main(["targets", "add", "local", "--conn", target_dsn, "--label", "env=test", "--dsn", store_dsn])
    cli.main(["collect", "--once", "--dsn", store_dsn])
    out = capsys.readouterr().out
    assert "target local registered" in out
    assert re.search(r"^local: \d+ query entries, \d+ samples$", out, re.M)
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT t.query, q.calls FROM pganalytics.query_stats q "
            "JOIN pganalytics.query_texts t USING (instance_id, queryid) "
            "WHERE t.query LIKE 'SELECT v FROM work WHERE id = $1%'").fetchall()
        assert rows and sum(r[1] for r in rows) >= 50
        assert conn.execute("SELECT server_version_num FROM pganalytics.instances").fetchone()[0] >= 150000
        target_db = psycopg.conninfo.conninfo_to_dict(target_dsn)["dbname"]
        assert conn.execute("SELECT count(*) FROM pganalytics.databases WHERE datname = %s",
                            (target_db,)).fetchone()[0] == 1
        assert conn.execute(
            "SELECT count(*) FROM pganalytics.series WHERE metric = 'pg_database_xact_commit' "
            "AND labels->>'datname' = %s", (target_db,)).fetchone()[0] == 1


def test_second_cycle_records_deltas(store_dsn, target_dsn):
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance('local', %s)", (target_dsn,))
    collect_once(store_dsn)
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        for i in range(20):
            conn.execute("SELECT v FROM work WHERE id = %s", (i,))
    results = collect_once(store_dsn)
    assert results[0].ok
    with psycopg.connect(store_dsn) as conn:
        calls = conn.execute(
            "SELECT sum(d.calls) FROM pganalytics.query_stat_deltas d "
            "JOIN pganalytics.query_texts t USING (instance_id, queryid) "
            "WHERE t.query LIKE 'SELECT v FROM work WHERE id = $1%'").fetchone()[0]
        assert calls == 20
        assert conn.execute("SELECT count(DISTINCT ts) FROM pganalytics.samples").fetchone()[0] == 2


def test_unreachable_target_is_reported_not_fatal(store_dsn):
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("SELECT pganalytics.register_instance('down', 'host=127.0.0.1 port=1 dbname=x')")
    [result] = collect_once(store_dsn)
    assert not result.ok and "cannot connect to target" in result.error


def test_missing_extension_is_explained(databases):
    dsn = databases.create(prefix="nopgss")
    with target.connect(dsn) as conn:
        with pytest.raises(target.TargetError, match="CREATE EXTENSION pg_stat_statements"):
            pgss.select_sql(target.inspect(conn))


def test_old_extension_column_names_are_mapped():
    info = target.TargetInfo(180000, "1.10", frozenset(
        {"dbid", "userid", "queryid", "toplevel", "calls", "total_exec_time", "blk_read_time", "blk_write_time"}))
    sql = pgss.select_sql(info)
    assert "blk_read_time::float8" in sql and "NULL::timestamptz" in sql
    assert "shared_blk_read_time::" not in sql


def test_cli_errors_are_one_sentence(capsys, monkeypatch):
    monkeypatch.delenv("PGANALYTICS_DSN", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(["install"])
    assert exc.value.code == 2
    assert "no store given" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["install", "--dsn", "host=127.0.0.1 port=1 dbname=x"])
    err = capsys.readouterr().err
    assert "cannot connect to the store" in err and err.count("\n") == 1
