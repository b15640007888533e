"""One collection cycle against one target: read everything, touch nothing."""
from __future__ import annotations

from . import dbstats, pgss
from .batch import QueryStatsBatch, SamplesBatch
from .target import TargetInfo


def query_stats(conn, instance: str, info: TargetInfo) -> QueryStatsBatch:
    with conn.transaction(), conn.cursor() as cur:
        collected_at = cur.execute("SELECT statement_timestamp()").fetchone()[0]
        dealloc, stats_reset = cur.execute(pgss.INFO_SQL).fetchone()
        chunks = []
        with cur.copy(pgss.copy_out_sql(info)) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
        rows = cur.rowcount
    return QueryStatsBatch(instance, collected_at, b"".join(chunks), rows, dealloc, stats_reset)


def database_stats(conn, instance: str) -> SamplesBatch:
    with conn.transaction():
        collected_at = conn.execute("SELECT statement_timestamp()").fetchone()[0]
        rows = conn.execute(dbstats.SELECT_SQL).fetchall()
    return SamplesBatch(instance, "pg_stat_database", collected_at, dbstats.samples(rows),
                        databases=[(r[0], r[1]) for r in rows])
