"""The gateway role reaches one stable surface: api_* views and functions, nothing else.

Analytics (analyze_query_performance, robust_zscore, plan_nodes, ...) may change shape
between versions; the gateway sees them only through api_* wrappers, so a catalog query
over every privilege it holds, directly or through role membership, must find api_* only.
"""
from __future__ import annotations

GATEWAY = "pganalytics_gateway"

REACHABLE = """
    SELECT c.relname::text, c.relkind::text
    FROM pg_class c
    WHERE c.relnamespace = 'pganalytics'::regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND (has_table_privilege(%(role)s, c.oid,
                               CASE WHEN c.relkind = 'S' THEN 'SELECT, UPDATE'
                                    ELSE 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER' END)
           OR (c.relkind <> 'S' AND has_any_column_privilege(%(role)s, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
           OR (c.relkind = 'S' AND has_sequence_privilege(%(role)s, c.oid, 'USAGE')))
    UNION ALL
    SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', 'function'
    FROM pg_proc p
    WHERE p.pronamespace = 'pganalytics'::regnamespace
      AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
    ORDER BY 1
"""


def reachable(conn, role=GATEWAY):
    return conn.execute(REACHABLE, {"role": role}).fetchall()


def test_gateway_reaches_api_objects_only(store_conn):
    objects = reachable(store_conn)
    assert objects, "the gateway must reach the api surface"
    assert [o for o in objects if not o[0].startswith("api_")] == []


def test_gateway_reaches_what_the_routes_call(store_conn):
    names = {o[0] for o in reachable(store_conn)}
    assert {"api_instances",
            "api_queries(text, integer, timestamp with time zone, timestamp with time zone)"} <= names
    assert any(n.startswith("api_query_analysis(") for n in names)
    # analytics stay callable by admins and from psql, not by the gateway
    admin = {o[0] for o in reachable(store_conn, "pganalytics_admin")}
    assert "plan_nodes" in admin and any(n.startswith("robust_zscore(") for n in admin)
    assert any(n.startswith("analyze_query_performance(") for n in admin)


def test_the_routes_api_objects_are_documented(store_conn):
    undocumented = store_conn.execute("""
        SELECT o FROM unnest(ARRAY[
            'pganalytics.api_instances'::regclass::oid,
            'pganalytics.api_queries(text, int, timestamptz, timestamptz)'::regprocedure::oid,
            'pganalytics.api_query_analysis(text, interval, bigint, float8, float8, float8)'::regprocedure::oid]) o
        WHERE coalesce(obj_description(o, 'pg_class'), obj_description(o, 'pg_proc'), '') NOT LIKE 'API (GET /api/v2/%'
    """).fetchall()
    assert undocumented == []


def test_every_api_object_is_documented(store_conn):
    """The api_* surface is what clients and psql users read: each object says what it is."""
    undocumented = store_conn.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'pganalytics'::regnamespace AND p.proname LIKE 'api\\_%'
          AND obj_description(p.oid, 'pg_proc') IS NULL
        UNION ALL
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relname LIKE 'api\\_%'
          AND c.relkind IN ('v', 'm') AND obj_description(c.oid, 'pg_class') IS NULL""").fetchall()
    assert undocumented == []
