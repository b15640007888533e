"""diagnosis_inputs()' plan evidence: a plan change is the window's plan against the plan in
effect just before it, not against every plan seen that day."""
from __future__ import annotations

import json

from .stage import at, entry, ingest, register

PLAN = '[{"Plan": {"Node Type": "%s", "Relation Name": "t", "Total Cost": 10, "Plan Rows": 1}}]'


def test_a_plan_used_hours_ago_and_back_in_the_window_is_a_change(store_conn):
    iid = register(store_conn, "plans")
    for m in range(0, 31):  # one statement, a snapshot a minute over the half hour before 10:30
        ingest(store_conn, iid, at(600 + m), [entry(7, 10 * (m + 1), 5.0 * (m + 1), query="SELECT * FROM t WHERE k = $1")])

    def plan(minutes, node, h):
        store_conn.execute("INSERT INTO pganalytics.query_executions (instance_id, queryid, collected_at, plan_hash, execution_plan)"
                           " VALUES (%s, 7, %s, %s, %s)", (iid, at(minutes), h, PLAN % node))

    plan(480, "Seq Scan", 1)      # 08:00, long before the baseline
    plan(605, "Index Scan", 2)    # the plan in effect before the window
    plan(621, "Index Scan", 2)
    plan(626, "Seq Scan", 1)      # in the window (10:25-10:30): back to the old plan

    def plans_of(p_from, p_to):
        doc = store_conn.execute("SELECT pganalytics.diagnosis_inputs('plans', %s, %s)", (at(p_from), at(p_to))).fetchone()[0]
        return {p["queryid"]: p for p in doc["plans"]}[7]

    p = plans_of(625, 630)
    assert p["b_hashes"] == [2] and p["w_hashes"] == [1]
    assert [s["node"] for s in p["b_scans"]] == ["Index Scan"] and [s["node"] for s in p["w_scans"]] == ["Seq Scan"]
    # no capture in the baseline itself (10:15-10:17): the newest one before it is the plan in effect
    p = plans_of(617, 619)
    assert p["b_hashes"] == [2] and p["w_hashes"] is None
    assert json.dumps(p)  # plain JSON
