"""Generic plans (collector/plans.py) on real PostgreSQL 15, 16 and 18 targets, delivered
through Sink.deliver into pganalytics.ingest_plans() in the store."""
from __future__ import annotations

import copy
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pganalytics.collector import metrics, plans
from pganalytics.collector.batch import RowsBatch
from pganalytics.collector.sink import Sink

QUERY = "SELECT v FROM w WHERE k = $1"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


# --- pure functions, no database ------------------------------------------------------------

def _plan(scan="Index Scan", cost=8.3, rows=1):
    return [{"Plan": {"Node Type": "Aggregate", "Strategy": "Plain", "Startup Cost": cost, "Total Cost": cost + 1,
                      "Plan Rows": 1, "Plan Width": 8, "Plans": [
                          {"Node Type": scan, "Parent Relationship": "Outer", "Relation Name": "w",
                           "Index Name": "w_k" if scan != "Seq Scan" else None, "Startup Cost": 0.29,
                           "Total Cost": cost, "Plan Rows": rows, "Plan Width": 4, "Filter": "(k = $1)"}]}}]


def test_plan_hash_ignores_costs_rows_and_widths():
    base = plans.plan_hash(_plan())
    changed = _plan(cost=12345.6, rows=999)
    changed[0]["Plan"]["Plan Width"] = 64
    changed[0]["Planning Time"] = 3.2
    assert plans.plan_hash(changed) == base
    assert plans.plan_hash(copy.deepcopy(_plan())) == base
    assert -2**63 <= base < 2**63


def test_plan_hash_sees_shape_changes():
    base = plans.plan_hash(_plan())
    assert plans.plan_hash(_plan(scan="Seq Scan")) != base
    renamed = _plan()
    renamed[0]["Plan"]["Plans"][0]["Index Name"] = "w_k2"
    assert plans.plan_hash(renamed) != base
    deeper = _plan()
    deeper[0]["Plan"]["Plans"] = [{"Node Type": "Gather", "Plans": deeper[0]["Plan"]["Plans"]}]
    assert plans.plan_hash(deeper) != base


def test_what_is_plannable():
    assert plans.skip_reason("/* app */ -- x\n ( SELECT 1 )") is None
    assert plans.skip_reason("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d") is None
    assert "utility statement (CREATE)" in plans.skip_reason("CREATE INDEX i ON t (k)")
    assert "utility statement (EXPLAIN)" in plans.skip_reason("EXPLAIN ANALYZE SELECT 1")
    assert "no query text" in plans.skip_reason(None)
    assert plans.param_count("SELECT $1, $12, '$$' || $3") == 12


def test_rank_by_time_spent_since_the_last_capture():
    now = [(1, 5, "db", 1000.0), (2, 5, "db", 300.0), (3, 5, "db", 50.0), (4, 5, "db", 80.0)]
    assert [r[0] for r in plans.rank(now, {})] == [1, 2, 4, 3]  # first capture: cumulative
    previous = {(1, 5): 990.0, (2, 5): 100.0, (4, 5): 500.0}  # 4 was reset since, 3 is new
    assert [r[0] for r in plans.rank(now, previous)] == [2, 4, 3, 1]


# --- real targets -------------------------------------------------------------------------

@pytest.fixture(params=["15", "16", "18"])
def target_db(request, other_server):
    """A fresh database on a throwaway target server with an indexed table and a
    parameterised workload in pg_stat_statements (reset first)."""
    admin = other_server(request.param)
    name = f"pga_plans_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(admin, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE w (id int PRIMARY KEY, k int, v text)")
        conn.execute("INSERT INTO w SELECT g, g % 1000, 'v' || g FROM generate_series(1, 20000) g")
        conn.execute("CREATE INDEX w_k ON w (k)")
        conn.execute("ANALYZE w")
        conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(30):
            conn.execute("SELECT v FROM w WHERE k = %s", (i,))
            conn.execute("SELECT count(*) FROM w WHERE id IN (1, 2, 3) AND k = %s", (i,))
            # untypable $n in ARRAY[...] (a seq scan, so it ranks high): EXPLAIN fails
            conn.execute("SELECT count(*) FROM w WHERE id = ANY(ARRAY[1, 2]) OR v = %s", (str(i),))
        conn.execute("CREATE TABLE ddl_probe AS SELECT g FROM generate_series(1, 50000) g")
    yield request.param, dsn, name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _queryid(dsn, text):
    with psycopg.connect(dsn) as conn:
        # top-level first: on 18 a CREATE TABLE AS also has a nested entry (its SELECT) under
        # the same text, which plan capture passes over silently
        return conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE %s AND dbid = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                            "ORDER BY toplevel DESC LIMIT 1", (text,)).fetchone()[0]


def _row(batch, queryid):
    [row] = [r for r in batch.rows if r["queryid"] == queryid]
    return row


def test_capture_store_and_see_a_plan_change(target_db, store_conn):
    major, dsn, _ = target_db
    store_conn.execute("SELECT pganalytics.register_instance('t', %s)", (dsn,))
    sink = Sink(store_conn)
    qid = _queryid(dsn, QUERY)

    totals: dict = {}  # kept between captures: rank by time spent since the last one
    first, skipped = plans.capture_plans(dsn, "t", totals=totals)
    plan = _row(first, qid)["plan"]
    assert totals[(qid, _row(first, qid)["dbid"])] > 0
    assert isinstance(plan, list) and plan[0]["Plan"]["Node Type"]
    assert "w_k" in json.dumps(plan)  # the generic plan uses the index on k
    assert any(f"query {_queryid(dsn, 'CREATE TABLE ddl_probe AS %')}"
               in s and "utility statement (CREATE)" in s for s in skipped), skipped
    assert any("EXPLAIN failed (42883)" in s for s in skipped), skipped  # and the others still planned
    assert len(first.rows) >= 3
    with psycopg.connect(dsn) as conn:  # our EXPLAINs do not pollute the target's statistics
        assert conn.execute("SELECT count(*) FROM pg_stat_statements WHERE query ~* '^\\s*(explain|prepare)'").fetchone()[0] == 0
    assert sink.deliver(first) == len(first.rows) > 0
    assert sink.deliver(first) == 0  # the same batch again: nothing stored

    second, _ = plans.capture_plans(dsn, "t", totals=totals)
    assert second.collected_at > first.collected_at
    assert _row(second, qid)["plan_hash"] == _row(first, qid)["plan_hash"]
    sink.deliver(second)
    stored = "SELECT plan_hash, execution_plan FROM pganalytics.query_executions WHERE queryid = %s ORDER BY collected_at"
    assert len(store_conn.execute(stored, (qid,)).fetchall()) == 1  # unchanged plan: not stored twice

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX w_k")
        conn.execute("ANALYZE w")
    third, _ = plans.capture_plans(dsn, "t", totals=totals)
    assert _row(third, qid)["plan_hash"] != _row(first, qid)["plan_hash"]
    assert sink.deliver(third) >= 1
    history = store_conn.execute(stored, (qid,)).fetchall()
    assert len(history) == 2 and history[0][0] != history[1][0]
    assert "w_k" not in json.dumps(history[1][1]) and history[1][1][0]["Plan"]["Node Type"]
    assert store_conn.execute("SELECT DISTINCT plan_kind FROM pganalytics.query_executions").fetchall() == [("generic",)]


def test_squashed_in_lists(target_db):
    major, dsn, _ = target_db
    batch, skipped = plans.capture_plans(dsn, "t")
    text = ("SELECT count(*) FROM w WHERE id IN ($1 /*, ... */) AND k = $2" if major == "18"
            else "SELECT count(*) FROM w WHERE id IN ($2, $3, $4) AND k = $1")
    # PG 18's squashed list is a comment to the parser: planned as a one-element list.
    assert _row(batch, _queryid(dsn, text))["plan"][0]["Plan"]["Node Type"] == "Aggregate"


def test_what_the_role_cannot_see_is_skipped_with_a_reason(target_db):
    _, dsn, dbname = target_db
    role, other = f"pga_mon_{uuid.uuid4().hex[:6]}", f"pga_closed_{uuid.uuid4().hex[:6]}"
    admin = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_monitor")
        conn.execute(f"CREATE DATABASE {other}")
        conn.execute(f"REVOKE CONNECT ON DATABASE {other} FROM PUBLIC")
    try:
        with psycopg.connect(make_conninfo(dsn, dbname=other), autocommit=True) as conn:
            conn.execute("CREATE TABLE secret (id int)")
            for i in range(5):
                conn.execute("SELECT * FROM secret WHERE id = %s", (i,))
        mon = make_conninfo(dsn, user=role)
        batch, skipped = plans.capture_plans(mon, "t", limit=50)
        text = "\n".join(skipped)
        assert f"in {other}: cannot connect" in text
        assert f"query {_queryid(dsn, QUERY)} in {dbname}: EXPLAIN failed (42501): permission denied" in text
        assert not any(r["queryid"] == _queryid(dsn, QUERY) for r in batch.rows)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


# --- the store function alone -------------------------------------------------------------

def test_ingest_stores_plan_changes_only(store_conn):
    store_conn.execute("SELECT pganalytics.register_instance('t', 'host=x')")
    sink = Sink(store_conn)

    def batch(minute, scan):
        plan = _plan(scan=scan, cost=minute + 1.0)
        return RowsBatch("t", "plans", T0 + timedelta(minutes=minute),
                         [{"queryid": 7, "dbid": 5, "plan_hash": plans.plan_hash(plan), "plan": plan}])

    assert [sink.deliver(batch(m, s)) for m, s in
            [(0, "Index Scan"), (1, "Index Scan"), (2, "Seq Scan"), (3, "Index Scan"), (3, "Index Scan")]] == [1, 0, 1, 1, 0]
    assert store_conn.execute("SELECT count(*) FROM pganalytics.snapshots WHERE source = 'plans'").fetchone()[0] == 4


@pytest.mark.parametrize("rows, message", [
    ({"queryid": 1}, "rows must be a JSON array"),
    ([{"plan_hash": 1, "plan": _plan()}], "row 1 has no numeric queryid"),
    ([{"queryid": 1, "plan": _plan()}], "row 1 has no numeric plan_hash"),
    ([{"queryid": 1, "plan_hash": 1, "plan": {"x": 1}}], "row 1 has no EXPLAIN"),
    ([{"queryid": 1, "plan_hash": 1, "plan": _plan()}] * 2, "holds a \\(queryid, dbid\\) twice"),
])
def test_ingest_refuses_bad_rows(store_conn, rows, message):
    iid = store_conn.execute("SELECT pganalytics.register_instance('t', 'host=x')").fetchone()[0]
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute("SELECT pganalytics.ingest_plans(%s, %s, %s)", (iid, T0, json.dumps(rows)))
    assert store_conn.execute("SELECT count(*) FROM pganalytics.snapshots").fetchone()[0] == 0


# --- what cannot be planned is skipped before trying, remembered, logged once, counted -------

def _counted(instance, outcome):
    return metrics.REGISTRY.value("pganalytics_collector_plan_queries_total", instance=instance, outcome=outcome)


def _explain_errors(instance, sqlstate):
    return metrics.REGISTRY.value("pganalytics_collector_plan_explain_errors_total", instance=instance,
                                  sqlstate=sqlstate)


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_plan_memory_is_bounded_and_forgets_what_pg_stat_statements_dropped_or_reset():
    clock = _Clock()
    memory = plans.PlanMemory(retry_after_s=60, max_entries=3, clock=clock)
    assert memory.remember((1, 5), "utility") and not memory.remember((1, 5), "utility")  # news once
    assert memory.remember((1, 5), "EXPLAIN failed (42P01)")  # another reason is news again
    for q in (2, 3, 4):
        memory.remember((q, 5), "x")
    assert len(memory) == 3 and not memory.known((1, 5))  # the oldest went
    clock.now += 61
    assert not memory.known((2, 5))  # due for a retry
    memory.totals.update({(2, 5): 10.0, (3, 5): 10.0, (4, 5): 10.0})
    memory.update([(2, 5, "db", 12.0, True), (3, 5, "db", 1.0, True)])  # 3 was reset, 4 evicted
    assert len(memory) == 1 and memory.totals == {(2, 5): 12.0, (3, 5): 1.0}


@pytest.fixture
def unplannable_db(target_db):
    """target_db plus statements that rank high but cannot be planned: a query only run inside a
    PL/pgSQL function (its text names the function's variable), and a utility statement."""
    major, dsn, name = target_db
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION count_v(p_v text) RETURNS bigint LANGUAGE plpgsql AS "
                     "$$ BEGIN RETURN (SELECT count(*) FROM w WHERE v LIKE p_v || '%'); END $$")
        for i in range(30):
            conn.execute("SELECT count_v(%s)", (str(i),))
    return major, dsn, name


def test_unplannable_queries_are_skipped_remembered_logged_once_and_counted(unplannable_db, caplog):
    _, dsn, _ = unplannable_db
    instance = f"t-{uuid.uuid4().hex[:8]}"  # the registry is process-wide
    clock = _Clock()
    memory = plans.PlanMemory(clock=clock)
    caplog.set_level(logging.DEBUG, logger="pganalytics.collector.plans")

    first, skipped = plans.capture_plans(dsn, instance, memory=memory)
    first_skipped = set(skipped)
    text = "\n".join(skipped)
    assert "42703" not in text and "p_v" not in text, text  # never EXPLAINed: not top-level
    assert "utility statement (CREATE)" in text and "EXPLAIN failed (42883)" in text, text
    assert _counted(instance, "not_toplevel") >= 1
    assert _counted(instance, "utility") >= 1 and _explain_errors(instance, "42883") == 1
    assert _counted(instance, "planned") == len(first.rows) >= 3
    assert _queryid(dsn, "SELECT count_v($1)") in {r["queryid"] for r in first.rows}  # the call itself plans
    infos = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(infos) == 1 and "42883" in infos[0].getMessage(), [r.getMessage() for r in infos]

    caplog.clear()
    second, skipped = plans.capture_plans(dsn, instance, memory=memory)
    # (the test's own BEGINs since are news: reported once, at DEBUG)
    assert not first_skipped & set(skipped), skipped
    assert {r["queryid"] for r in second.rows} >= {r["queryid"] for r in first.rows}
    assert _explain_errors(instance, "42883") == 1  # not tried again
    assert _counted(instance, "remembered") >= 2
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]

    clock.now += memory.retry_after_s + 1  # an hour later: tried again, still failing, not logged
    caplog.clear()
    third, skipped = plans.capture_plans(dsn, instance, memory=memory)
    assert not first_skipped & set(skipped) and _explain_errors(instance, "42883") == 2
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_a_nested_statement_never_lends_its_text_to_a_top_level_one(unplannable_db):
    _, dsn, _ = unplannable_db
    # The same queryid top-level (QUERY, psycopg's int2 $1) and, more often, inside a function
    # under the variable's name: EXPLAIN must get the top-level text.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION lookup_many(p int2) RETURNS void LANGUAGE plpgsql AS "
                     "$$ BEGIN FOR i IN 1..2000 LOOP PERFORM v FROM w WHERE k = p; END LOOP; END $$")
        conn.execute("SELECT lookup_many(3::int2)")
        assert conn.execute("SELECT count(DISTINCT toplevel) FROM pg_stat_statements WHERE queryid = %s",
                            (_queryid(dsn, QUERY),)).fetchone()[0] == 2
    batch, skipped = plans.capture_plans(dsn, "t", limit=50)
    assert not any("42703" in s for s in skipped), skipped
    assert "w_k" in json.dumps(_row(batch, _queryid(dsn, QUERY))["plan"])
