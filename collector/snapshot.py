"""Reading one target: pg_stat_statements as a COPY stream, every other source as
samples. Reads only; every statement runs under the connection's short timeouts."""
from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from . import pgss
from .batch import QueryStatsBatch, RowsBatch, SamplesBatch
from .sources import Source, pick_sql, rows_to_samples
from .target import TargetError, TargetInfo


def query_stats(conn, instance: str, info: TargetInfo, known_texts: set[int],
                query_filter: pgss.QueryFilter = pgss.NO_FILTER) -> QueryStatsBatch:
    """Counters as a COPY stream; texts only for queryids not in known_texts. The caller keeps
    known_texts per target and adds batch.texts to it once the batch is safely queued (a
    cycle that fails later must send them again). `query_filter`'s databases and roles are
    left out on the target."""
    with conn.transaction(), conn.cursor() as cur:
        collected_at = cur.execute("SELECT statement_timestamp()").fetchone()[0]
        dealloc, stats_reset = cur.execute(pgss.INFO_SQL).fetchone()
        chunks = []
        with cur.copy(pgss.copy_out_sql(info), query_filter.params()) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
        rows = cur.rowcount
        texts = cur.execute(pgss.TEXTS_SQL, {"known": list(known_texts), **query_filter.params()}).fetchall()
    return QueryStatsBatch(instance, collected_at, b"".join(chunks), rows, dealloc, stats_reset, texts)


def sampled(conn, instance: str, source: Source, info: TargetInfo,
            collected_at: datetime) -> SamplesBatch:
    """One source's rows as samples stamped collected_at; TargetError says why it can't be read."""
    sql = pick_sql(source, info.server_version_num)
    if sql is None:
        raise TargetError(source.why_missing or
                          f"{source.name} is not available on PostgreSQL {info.server_version_num // 10000}")
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise TargetError(f"{source.name}: permission denied ({exc.diag.message_primary}): "
                          "grant pg_monitor to the collector's role") from exc
    except psycopg.Error as exc:
        raise TargetError(f"{source.name}: {exc.diag.message_primary or exc}") from exc
    databases = [(r["datid"], r["datname"]) for r in rows] if source.lists_databases else []
    batch = SamplesBatch(instance, source.name, collected_at, rows_to_samples(source, rows), databases)
    batch.layout()  # here, in the target's worker thread, not in the single delivery thread
    return batch


# Values set by the collector's own session ('client', 'session') say nothing about the server.
# Server-wide values that are not the default, then what ALTER ROLE / ALTER DATABASE ... SET
# gives a role or database (pg_db_role_setting is readable by every role), named
# "work_mem@role:app", "work_mem@db:shop", "work_mem@role:app/db:shop": a planner or memory
# setting changed for the application's role alone is often the cause of a slow query.
# Custom options (app.* placeholders) are left out: applications keep secrets in them.
SETTINGS_SQL = """
SELECT name, setting, unit, source, pending_restart FROM pg_settings
WHERE source NOT IN ('default', 'override', 'client', 'session') AND category <> 'Customized Options'
UNION ALL
SELECT split_part(c.item, '=', 1) || '@' || CASE
           WHEN s.setrole = 0 THEN 'db:' || d.datname
           WHEN s.setdatabase = 0 THEN 'role:' || r.rolname
           ELSE 'role:' || r.rolname || '/db:' || d.datname END,
       substr(c.item, strpos(c.item, '=') + 1), NULL,
       CASE WHEN s.setrole = 0 THEN 'database' ELSE 'user' END, false
FROM pg_db_role_setting s
LEFT JOIN pg_roles r ON r.oid = s.setrole
LEFT JOIN pg_database d ON d.oid = s.setdatabase
CROSS JOIN LATERAL unnest(s.setconfig) AS c(item)
JOIN pg_settings p ON p.name = split_part(c.item, '=', 1) AND p.category <> 'Customized Options'
"""


def settings(conn, instance: str, collected_at: datetime) -> RowsBatch:
    """Non-default settings (server-wide, and for roles and databases); the store keeps their history (pganalytics.settings_history)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(SETTINGS_SQL).fetchall()
    return RowsBatch(instance, "settings", collected_at, rows)


# The connected database's indexes (like pg_stat_user_indexes, user schemas only), complete or
# not at all: the store reads a missing index as dropped.
MAX_INDEX_DEFINITIONS = 5000
INDEX_DEFINITIONS_SQL = """
SELECT current_database() AS datname, n.nspname AS schemaname, t.relname, c.relname AS indexrelname,
       pg_get_indexdef(c.oid) AS indexdef,
       ARRAY(SELECT pg_get_indexdef(c.oid, k, true) FROM generate_series(1, i.indnkeyatts) k) AS columns,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 2, 4
LIMIT %s"""


class TooManyIndexes(TargetError):
    """A database with more indexes than one snapshot holds: reported as unavailable."""


def index_definitions(conn, instance: str, collected_at: datetime) -> RowsBatch:
    """Every index of the connected database with its definition and key columns; the store
    keeps their history (pganalytics.index_definitions: which index went, when)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(INDEX_DEFINITIONS_SQL, (MAX_INDEX_DEFINITIONS + 1,)).fetchall()
    if len(rows) > MAX_INDEX_DEFINITIONS:
        raise TooManyIndexes(f"more than {MAX_INDEX_DEFINITIONS} indexes: definitions not kept")
    if not rows:  # say which database has none, so its last index dropped closes in the store
        rows = [{"datname": conn.info.dbname}]
    return RowsBatch(instance, "index_definitions", collected_at, rows)
