"""A comparable snapshot of everything the store owns in the catalog."""
from __future__ import annotations

import psycopg

_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, coalesce(c.reloptions::text, ''),
               coalesce(pg_get_partkeydef(c.oid), ''), coalesce(c.relacl::text, '')
        FROM pg_class c WHERE c.relnamespace = 'pganalytics'::regnamespace ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'pganalytics'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'pganalytics'::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'pganalytics'::regnamespace ORDER BY 1""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), coalesce(p.proacl::text, '')
        FROM pg_proc p WHERE p.pronamespace = 'pganalytics'::regnamespace ORDER BY 1""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c
        WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 1""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'pganalytics'::regnamespace AND NOT tgisinternal ORDER BY 1, 2""",
    "roles": "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'pganalytics%' ORDER BY 1",
    "schema": "SELECT nspname, coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'pganalytics'",
    "extensions": "SELECT extname FROM pg_extension WHERE extname = 'plpython3u'",
    "default_acl": """
        SELECT defaclobjtype, defaclacl::text FROM pg_default_acl
        WHERE defaclnamespace = to_regnamespace('pganalytics') ORDER BY 1""",
}


def snapshot(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regnamespace('pganalytics') IS NULL").fetchone()[0]:
            return {k: [] for k in _QUERIES} | {
                "roles": conn.execute(_QUERIES["roles"]).fetchall(),
                "extensions": conn.execute(_QUERIES["extensions"]).fetchall()}
        return {name: conn.execute(sql).fetchall() for name, sql in _QUERIES.items()}
