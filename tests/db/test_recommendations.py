"""recommendations(): each kind appears when its evidence is in the store and not otherwise,
ranked by expected benefit; bad arguments are refused."""
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from .stage import entry, ingest, register


def test_kinds_from_their_evidence(store_conn):
    iid = register(store_conn, "r1")
    t0 = datetime.now(timezone.utc) - timedelta(minutes=30)
    # a slow statement with most of the time, a fast one with little
    for k in range(4):
        ingest(store_conn, iid, t0 + timedelta(minutes=k),
               [entry(11, 10 + 10 * k, 5000.0 * (1 + k), query="SELECT * FROM big WHERE x = $1"),
                entry(12, 1000 + 1000 * k, 10.0 * (1 + k), query="SELECT 1")])
    assert {r[0] for r in store_conn.execute("SELECT kind FROM pganalytics.recommendations('r1')")} == {"rewrite_query"}

    now = datetime.now(timezone.utc)
    store_conn.execute(
        "INSERT INTO pganalytics.lock_waits (instance_id, collected_at, kind, pid, usename, datname, state, xact_age_s, xmin_age)"
        " VALUES (%s, %s, 'idle_in_transaction', 4321, 'report', 'app', 'idle in transaction', 900, 120000)", (iid, now))
    store_conn.execute(
        "INSERT INTO pganalytics.index_advice (instance_id, collected_at, datname, queryid, schemaname, relname, columns,"
        " create_statement, cost_before, cost_after, verified_with) VALUES"
        " (%s, %s, 'app', 11, 'public', 'big', '{x}', 'CREATE INDEX CONCURRENTLY ON \"public\".\"big\" (\"x\")', 20000, 12, 'hypopg')",
        (iid, now))
    rows = store_conn.execute("SELECT rank, kind, statement, evidence, score FROM pganalytics.recommendations('r1')").fetchall()
    kinds = [r[1] for r in rows]
    assert set(kinds) == {"rewrite_query", "end_session", "create_index"}
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert [r[4] for r in rows] == sorted((r[4] for r in rows), reverse=True)
    session = next(r for r in rows if r[1] == "end_session")
    assert session[2] == "SELECT pg_terminate_backend(4321);" and session[3]["xmin_age"] == 120000
    index = next(r for r in rows if r[1] == "create_index")
    assert index[2].startswith("CREATE INDEX CONCURRENTLY") and index[3]["verified_with"] == "hypopg"
    assert index[4] > 0.9 * next(r for r in rows if r[1] == "rewrite_query")[4]  # nearly all of its time back
    # a session idle for a short while is no recommendation
    store_conn.execute("UPDATE pganalytics.lock_waits SET xact_age_s = 30")
    assert "end_session" not in [r[0] for r in store_conn.execute("SELECT kind FROM pganalytics.recommendations('r1')")]
    # every instance when none is named
    register(store_conn, "r2")
    assert {r[0] for r in store_conn.execute("SELECT instance FROM pganalytics.recommendations()")} == {"r1"}


def test_duplicate_indexes(store_conn):
    iid = register(store_conn, "dup")

    def index(name, columns, unique=False, where="", method="btree", valid_to=None):
        cols = ", ".join(columns)
        store_conn.execute(
            "INSERT INTO pganalytics.index_definitions (instance_id, datname, schemaname, relname, indexrelname,"
            " indexdef, columns, is_unique, is_primary, is_valid, valid_from, valid_to)"
            " VALUES (%s, 'app', 'public', 't', %s, %s, %s, %s, false, true, now() - interval '1 day', %s)",
            (iid, name, f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON public.t USING {method} ({cols}){where}",
             columns, unique, valid_to))

    index("t_a", ["a"])                      # the leading part of t_a_b: dropped
    index("t_a_b", ["a", "b"])
    index("t_b_u", ["b"], unique=True)        # a constraint: kept
    index("t_b", ["b"])                       # same columns as the unique one: dropped
    index("t_c_partial", ["c"], where=" WHERE (c > 0)")
    index("t_c_d", ["c", "d"])
    index("t_e_hash", ["e"], method="hash")
    index("t_e_f", ["e", "f"])
    index("t_old", ["a"], valid_to=datetime.now(timezone.utc))  # gone already
    rows = store_conn.execute("SELECT statement, evidence ->> 'kept' FROM pganalytics.recommendations('dup') "
                              "WHERE kind = 'drop_duplicate_index' ORDER BY 1").fetchall()
    assert [(r[0], r[1].split(" INDEX ")[1].split()[0]) for r in rows] == [
        ("DROP INDEX CONCURRENTLY public.t_a;", "t_a_b"), ("DROP INDEX CONCURRENTLY public.t_b;", "t_b_u")]


@pytest.mark.parametrize("sql, message", [
    ("SELECT * FROM pganalytics.recommendations('nope')", "unknown instance"),
    ("SELECT * FROM pganalytics.recommendations(NULL, '-1 day')", "window must be a positive interval"),
    ("SELECT * FROM pganalytics.recommendations(NULL, '1 year')", "up to 90 days"),
])
def test_bad_arguments(store_conn, sql, message):
    with pytest.raises(psycopg.Error, match=message):
        store_conn.execute(sql)
