"""plan_findings() over real EXPLAIN (FORMAT JSON) plans of the store's own server: each finding
where the plan shows it and not where it does not."""
from __future__ import annotations

import json

import psycopg
import pytest


@pytest.fixture
def plans(store_conn):
    c = store_conn
    c.execute("CREATE TABLE public.big (id int PRIMARY KEY, k int, pad text)")
    c.execute("INSERT INTO public.big SELECT g, g % 10000, repeat('x', 50) FROM generate_series(1, 200000) g")
    c.execute("CREATE TABLE public.few (id int, k int)")
    c.execute("INSERT INTO public.few SELECT g, g FROM generate_series(1, 2000) g")
    c.execute("ANALYZE public.big, public.few")

    def explain(sql: str, **settings):
        with c.transaction():
            for name, value in settings.items():
                c.execute(f"SET LOCAL {name} = '{value}'")
            return c.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()[0]
    return explain


def findings(conn, plan, *args, table_rows=None):
    """plan_findings(plan, rows_per_call, temp_blocks_per_call, work_mem, hash_mem_multiplier)."""
    defaults = [None, None, 4194304, 2.0]
    values = list(args) + defaults[len(args):]
    return conn.execute("SELECT pganalytics.plan_findings(%s, %s, %s, %s, %s, %s)",
                        (json.dumps(plan), *values, json.dumps(table_rows or {}))).fetchone()[0]


def kinds(found):
    return [f["finding"] for f in found]


def test_selective_seq_scan(store_conn, plans):
    plan = plans("SELECT * FROM public.big WHERE k = 5", enable_indexscan="off", enable_bitmapscan="off")
    assert kinds(findings(store_conn, plan, table_rows={"big": 200000})) == ["seq_scan_selective"]
    # the same plan of a small table, or without the table's size: nothing
    assert findings(store_conn, plan, table_rows={"big": 5000}) == []
    assert findings(store_conn, plan) == []
    wide = plans("SELECT * FROM public.big WHERE k > 10")  # keeps nearly every row
    assert findings(store_conn, wide, table_rows={"big": 200000}) == []


def test_misestimate_against_the_rows_a_call_returns(store_conn, plans):
    plan = plans("SELECT * FROM public.big WHERE id < 50")
    assert kinds(findings(store_conn, plan, 4000.0)) == ["misestimate"]
    assert findings(store_conn, plan, 60.0) == []
    count = plans("SELECT count(*) FROM public.big WHERE id < 50")  # a plain aggregate: always 1 row
    assert findings(store_conn, count, 4000.0) == []


def test_nested_loop_and_sorts(store_conn, plans):
    loop = plans("SELECT * FROM public.big b JOIN public.few f ON f.k = b.k",
                 enable_hashjoin="off", enable_mergejoin="off", enable_material="off")
    assert "nested_loop_large" in kinds(findings(store_conn, loop))
    sort = plans("SELECT * FROM public.big ORDER BY pad, k")
    spilled = findings(store_conn, sort, None, 900.0)
    assert kinds(spilled) == ["sort_spill"] and "spilled, 900 temporary blocks a call" in spilled[0]["detail"]
    assert "may spill" in findings(store_conn, sort)[0]["detail"]
    small = plans("SELECT * FROM public.few ORDER BY k")
    assert findings(store_conn, small) == []


def test_null_plan_and_bad_plans(store_conn):
    assert store_conn.execute("SELECT pganalytics.plan_findings(NULL)").fetchone()[0] == []
    assert store_conn.execute("SELECT pganalytics.plan_findings('[{\"Plan\": {}}]')").fetchone()[0] == []
    with pytest.raises(psycopg.Error):
        store_conn.execute("SELECT pganalytics.plan_findings('not json')")
