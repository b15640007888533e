"""Index advice (collector/index_advice.py) from captured generic plans on real targets: checked
with hypopg where it is installed, unchecked where not, none where an index already serves the
filter; delivered into pganalytics.index_advice."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pganalytics.collector import plans
from pganalytics.collector.index_advice import IndexAdvisor, filter_columns, seq_scans, uses_hypothetical
from pganalytics.collector.sink import Sink


@pytest.mark.parametrize("text, columns", [
    ("(customer = $1)", ["customer"]),
    ("((status = $1) AND (created_at > $2) AND (amount < $3))", ["status", "created_at"]),
    ("((code)::text = 'x'::text)", ["code"]),
    ('(("Mixed Case" = $1) AND (b >= 3))', ["Mixed Case", "b"]),
    ("($1 = customer)", ["customer"]),
    ("((a = $1) OR (b = $2))", None),
    ("(lower(email) = $1)", None),
    ("(x = y)", None),
])
def test_filter_columns(text, columns):
    assert filter_columns(text) == columns


def test_plan_walks():
    plan = [{"Plan": {"Node Type": "Gather", "Total Cost": 9.0, "Plans": [
        {"Node Type": "Seq Scan", "Relation Name": "t", "Filter": "(k = $1)", "Plan Rows": 3},
        {"Node Type": "Index Scan", "Relation Name": "u", "Index Name": "<13001>btree_u_k"}]}}]
    assert [n["Relation Name"] for n in seq_scans(plan)] == ["t"]
    assert uses_hypothetical(plan)
    plan[0]["Plan"]["Plans"][1]["Index Name"] = "u_k"
    assert not uses_hypothetical(plan)


def _target(admin: str, hypopg: bool) -> tuple[str, str]:
    name = f"pga_adv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(admin, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        if hypopg:
            conn.execute("CREATE SCHEMA tools")
            conn.execute("CREATE EXTENSION hypopg SCHEMA tools")
        conn.execute('CREATE TABLE orders (id int PRIMARY KEY, "Customer" int, region int, amount numeric)')
        conn.execute("INSERT INTO orders SELECT g, g % 5000, g % 4, g % 997 FROM generate_series(1, 100000) g")
        conn.execute("CREATE TABLE small (id int, k int)")
        conn.execute("INSERT INTO small SELECT g, g FROM generate_series(1, 500) g")
        conn.execute("ANALYZE")
        conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(20):
            conn.execute('SELECT sum(amount) FROM orders WHERE "Customer" = %s', (i,))
            conn.execute("SELECT count(*) FROM orders WHERE region = %s", (i % 4,))  # not selective
            conn.execute("SELECT count(*) FROM small WHERE k = %s", (i,))  # a small table
    return dsn, name


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_hypopg_checked_advice_is_stored(other_server, store_conn):
    admin = other_server("15")
    with psycopg.connect(admin) as conn:
        if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone():
            pytest.fail("hypopg is not installed for PostgreSQL 15 (make setup installs postgresql-15-hypopg)")
    dsn, name = _target(admin, hypopg=True)
    try:
        advisor = IndexAdvisor()
        batch, _ = plans.capture_plans(dsn, "adv", advisor=advisor)
        advice = advisor.take("adv", batch.collected_at)
        assert advice is not None and advice.source == "index_advice"
        [row] = advice.rows  # the region filter is not selective, small is small
        assert row["create_statement"] == 'CREATE INDEX CONCURRENTLY ON "public"."orders" ("Customer")'
        assert row["verified_with"] == "hypopg" and row["cost_after"] < 0.2 * row["cost_before"]
        with psycopg.connect(dsn) as conn:  # nothing was built, nothing hypothetical is left
            assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'").fetchone()[0] == 1
        # the same plan is not advised on again within the retry period
        batch2, _ = plans.capture_plans(dsn, "adv", advisor=advisor)
        assert advisor.take("adv", batch2.collected_at) is None

        store_conn.execute("SELECT pganalytics.register_instance('adv', %s)", (dsn,))
        sink = Sink(store_conn)
        assert sink.deliver(batch) > 0
        assert sink.deliver(advice) == 1 and sink.deliver(advice) == 0  # idempotent
        stored = store_conn.execute("SELECT columns, verified_with, cost_after < cost_before "
                                    "FROM pganalytics.index_advice").fetchall()
        assert stored == [(["Customer"], "hypopg", True)]
    finally:
        _drop(admin, name)


def test_without_hypopg_the_advice_is_unchecked_and_an_existing_index_gets_none(other_server):
    admin = other_server("18")
    dsn, name = _target(admin, hypopg=False)
    try:
        advisor = IndexAdvisor()
        batch, _ = plans.capture_plans(dsn, "adv", advisor=advisor)
        [row] = advisor.take("adv", batch.collected_at).rows
        assert row["columns"] == ["Customer"] and row["cost_after"] is None and row["verified_with"] is None
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute('CREATE INDEX orders_customer_region ON orders ("Customer", region) WHERE amount > 0')
            conn.execute("SELECT pg_stat_statements_reset()")
            for i in range(5):
                conn.execute('SELECT sum(amount) FROM orders WHERE "Customer" = %s AND amount < 0', (i,))
        batch, _ = plans.capture_plans(dsn, "adv", advisor=IndexAdvisor())
        assert batch.rows  # planned, yet no advice: an index leads with that column already
        assert IndexAdvisor().take("adv", batch.collected_at) is None
    finally:
        _drop(admin, name)


def test_bad_advice_rows_are_refused(store_conn):
    store_conn.execute("SELECT pganalytics.register_instance('adv', 'host=x')")
    iid = store_conn.execute("SELECT instance_id FROM pganalytics.instances WHERE name = 'adv'").fetchone()[0]
    with pytest.raises(psycopg.Error, match="row 1 needs datname"):
        store_conn.execute("SELECT pganalytics.ingest_index_advice(%s, now(), %s)",
                           (iid, '[{"datname": "d", "queryid": 1, "schemaname": "s", "relname": "r", "columns": []}]'))


def test_index_definition_snapshots_are_checked_and_late_ones_change_nothing(store_conn):
    store_conn.execute("SELECT pganalytics.register_instance('ixd', 'host=x')")
    iid = store_conn.execute("SELECT instance_id FROM pganalytics.instances WHERE name = 'ixd'").fetchone()[0]

    def row(db="app", name="i1", **more):
        return {"datname": db, "schemaname": "public", "relname": "t", "indexrelname": name,
                "indexdef": f"CREATE INDEX {name} ON public.t USING btree (k)", "columns": ["k"],
                "is_unique": False, "is_primary": False, "is_valid": True, **more}

    def ingest(at, rows):
        return store_conn.execute("SELECT pganalytics.ingest_index_definitions(%s, %s, %s)",
                                  (iid, at, json.dumps(rows))).fetchone()[0]

    with pytest.raises(psycopg.Error, match="one database"):
        ingest("2026-12-01 10:00Z", [row(), row(db="other", name="i2")])
    with pytest.raises(psycopg.Error, match="row 1 needs"):
        ingest("2026-12-01 10:00Z", [row(is_valid="yes")])
    with pytest.raises(psycopg.Error, match="occurs twice"):
        ingest("2026-12-01 10:00Z", [row(), row()])
    assert ingest("2026-12-01 10:00Z", [row(), row(name="i2")]) == 2
    assert ingest("2026-12-01 10:02Z", [row()]) == 0  # i2 dropped
    assert ingest("2026-12-01 10:01Z", [row(name="i2"), row(name="i3")]) == 0  # late: ignored
    assert store_conn.execute("SELECT indexrelname, valid_to FROM pganalytics.index_definitions "
                              "WHERE instance_id = %s ORDER BY 1", (iid,)).fetchall() == [
        ("i1", None), ("i2", datetime(2026, 12, 1, 10, 2, tzinfo=timezone.utc))]
    # the database's last index dropped: the one-row form {"datname"} closes it
    assert ingest("2026-12-01 10:03Z", [{"datname": "app"}]) == 0
    assert ingest("2026-12-01 10:04Z", []) == 0  # says nothing of any database
    assert store_conn.execute("SELECT indexrelname, valid_to FROM pganalytics.index_definitions "
                              "WHERE instance_id = %s ORDER BY 1", (iid,)).fetchall() == [
        ("i1", datetime(2026, 12, 1, 10, 3, tzinfo=timezone.utc)),
        ("i2", datetime(2026, 12, 1, 10, 2, tzinfo=timezone.utc))]
    with pytest.raises(psycopg.Error, match="row 2 needs"):  # the one-row form only alone
        ingest("2026-12-01 10:05Z", [row(), {"datname": "app"}])
    assert ingest("2026-12-01 10:06Z", [row(name="i4")]) == 1
