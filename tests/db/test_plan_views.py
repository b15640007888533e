"""JSON-path views over stored EXPLAIN (FORMAT JSON) plans."""
from __future__ import annotations

import json

import psycopg
import pytest

from .stage import register


def store_plan(conn, iid, sql, kind="generic"):
    """Store a plan the way the collector does: EXPLAIN without ANALYZE (estimates only)."""
    conn.execute("CREATE TABLE IF NOT EXISTS public.t (id int PRIMARY KEY, v int)")
    conn.execute("INSERT INTO public.t SELECT g, g % 10 FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING")
    conn.execute("ANALYZE public.t")
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()[0]
    conn.execute("INSERT INTO pganalytics.query_executions (instance_id, queryid, plan_kind, execution_plan) "
                 "VALUES (%s, 42, %s, %s)", (iid, kind, json.dumps(plan)))
    return plan


def test_plan_nodes_walks_the_whole_tree(store_conn):
    iid = register(store_conn)
    store_plan(store_conn, iid, "SELECT count(*) FROM public.t a JOIN public.t b ON a.v = b.id WHERE a.id < 100")
    nodes = store_conn.execute(
        "SELECT node_type, relation_name, plan_rows, total_cost FROM pganalytics.plan_nodes "
        "WHERE instance_id = %s", (iid,)).fetchall()
    types = [n[0] for n in nodes]
    assert "Aggregate" in types and len(nodes) >= 3
    assert {n[1] for n in nodes if n[1]} == {"t"}
    assert all(n[2] is not None and n[3] is not None for n in nodes)


def test_no_node_is_returned_twice(store_conn):
    iid = register(store_conn)
    plan = store_plan(store_conn, iid, "SELECT * FROM public.t WHERE id = 1")

    def count(node):
        return 1 + sum(count(child) for child in node.get("Plans", []))

    expected = count(plan[0]["Plan"])
    assert store_conn.execute("SELECT count(*) FROM pganalytics.plan_nodes").fetchone()[0] == expected


def test_plan_nodes_has_estimates_only(store_conn):
    """Stored plans are generic (the collector never runs EXPLAIN ANALYZE): no actual rows,
    so no actual_* columns and no misestimates view that could never return a row."""
    cols = [r[0] for r in store_conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'pganalytics.plan_nodes'::regclass "
        "AND attnum > 0 ORDER BY attnum")]
    assert cols == ["instance_id", "execution_id", "queryid", "collected_at", "plan_kind",
                    "node_type", "relation_name", "index_name", "startup_cost", "total_cost",
                    "plan_rows"]
    assert store_conn.execute("SELECT to_regclass('pganalytics.plan_misestimates')").fetchone()[0] is None


def test_a_plan_that_is_not_explain_json_is_refused(store_conn):
    iid = register(store_conn)
    with pytest.raises(psycopg.errors.CheckViolation, match="plan_shape"):
        store_conn.execute("INSERT INTO pganalytics.query_executions (instance_id, queryid, execution_plan) "
                           "VALUES (%s, 1, '{\"nope\": 1}')", (iid,))


@pytest.mark.pg(">= 17")
def test_pg17_view_uses_json_table(store_conn):
    viewdef = store_conn.execute("SELECT pg_get_viewdef('pganalytics.plan_nodes')").fetchone()[0]
    assert "JSON_TABLE" in viewdef.upper()
