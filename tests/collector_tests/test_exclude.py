"""A target's exclude_databases / exclude_roles keep whole databases and roles out of its query
statistics and plans, on the target side: e.g. the store's own database when the store runs
on a monitored server (the demo) - its ingest functions, COPYs and MERGEs crowd the top list."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pganalytics.collector import config, pgss, plans, snapshot, target
from pganalytics.collector.run import collect_once


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


@pytest.fixture
def workload_dsn(databases):
    dsn = databases.create(prefix="excl_target")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE work (id int PRIMARY KEY, v text)")
        for i in range(20):
            conn.execute("INSERT INTO work VALUES (%s, %s)", (i, f"v{i}"))
            conn.execute("SELECT v FROM work WHERE id = %s", (i,))
    return dsn


def _snapshot_rows(dsn: str, query_filter: pgss.QueryFilter) -> list[list[str]]:
    with target.connect(dsn) as conn:
        batch = snapshot.query_stats(conn, "t", target.inspect(conn), set(), query_filter)
    return [line.split("\t") for line in batch.copy_data.decode().splitlines()] if batch.rows else []


def test_excluded_database_and_role_never_leave_the_target(workload_dsn, store_dsn):
    role = f"pga_excl_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(store_dsn, autocommit=True) as conn:  # statements in the store database
        store_dbid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        conn.execute("SELECT count(*) FROM pganalytics.instances")
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
    try:
        with psycopg.connect(make_conninfo(workload_dsn, user=role), autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM work WHERE v = 'by the excluded role'")
            role_oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        everything = _snapshot_rows(workload_dsn, pgss.NO_FILTER)
        assert {r[0] for r in everything} >= {str(store_dbid)} and str(role_oid) in {r[1] for r in everything}

        kept = _snapshot_rows(workload_dsn, pgss.QueryFilter((_dbname(store_dsn), "no_such_db"), (role,)))
        assert kept and str(store_dbid) not in {r[0] for r in kept}
        assert str(role_oid) not in {r[1] for r in kept}
        workload_dbid = {r[0] for r in kept}
        assert len(workload_dbid) >= 1
    finally:
        with psycopg.connect(store_dsn, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_plans_leave_out_the_excluded_databases(workload_dsn, store_dsn):
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        store_dbid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        for _ in range(20):
            conn.execute("SELECT count(*) FROM pg_class a, pg_class b")  # a costly store-side query
    kept = pgss.QueryFilter((_dbname(store_dsn),))
    batch, skipped = plans.capture_plans(workload_dsn, "t", limit=200, query_filter=kept)
    assert batch.rows and store_dbid not in {r["dbid"] for r in batch.rows}
    assert not any(f"in {_dbname(store_dsn)}:" in s for s in skipped), skipped
    batch, _ = plans.capture_plans(workload_dsn, "t", limit=200)
    assert store_dbid in {r["dbid"] for r in batch.rows}  # without the filter it is planned


def test_collect_once_honours_the_config_for_registered_targets(workload_dsn, store_dsn):
    store_db = _dbname(store_dsn)
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        for name in ("plain", "filtered", "by-default"):
            conn.execute("SELECT pganalytics.register_instance(%s, %s)", (name, workload_dsn))
    conf = config.parse({"store": {"dsn": store_dsn},
                         "collector": {"exclude_databases": [store_db]},
                         "targets": [{"name": "plain", "conn": workload_dsn, "exclude_databases": []},
                                     {"name": "filtered", "conn": workload_dsn, "exclude_databases": [store_db]}]})
    assert conf.filter_for("by-default") == pgss.QueryFilter((store_db,))  # only registered: the default
    results = collect_once(store_dsn, config=conf)
    assert all(r.ok for r in results), results
    with psycopg.connect(store_dsn) as conn:
        store_dbid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        per_instance = dict(conn.execute(
            "SELECT i.name, array_agg(DISTINCT q.dbid) FROM pganalytics.query_stats q "
            "JOIN pganalytics.instances i USING (instance_id) GROUP BY 1").fetchall())
    assert store_dbid in per_instance["plain"]
    assert per_instance["filtered"] and store_dbid not in per_instance["filtered"]
    assert per_instance["by-default"] and store_dbid not in per_instance["by-default"]


@pytest.mark.parametrize("table, message", [
    ({"collector": {"exclude_databases": "pganalytics"}}, "collector.exclude_databases must be a list"),
    ({"targets": [{"name": "a", "conn": "x", "exclude_roles": [1]}]}, "targets\\[0\\].exclude_roles must be a list"),
])
def test_bad_exclusions_are_refused_with_what_to_fix(table, message):
    with pytest.raises(config.ConfigError, match=message):
        config.parse({"store": {"dsn": "x"}, **table})


def test_a_target_inherits_each_list_it_does_not_set():
    conf = config.parse({"store": {"dsn": "x"},
                         "collector": {"exclude_databases": ["pganalytics"], "exclude_roles": ["etl"]},
                         "targets": [{"name": "a", "conn": "x", "exclude_databases": ["postgres"]}]})
    assert conf.filter_for("a") == pgss.QueryFilter(("postgres",), ("etl",))
    assert conf.filter_for("registered-elsewhere") == pgss.QueryFilter(("pganalytics",), ("etl",))
