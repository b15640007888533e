"""pg_stat_statements: the SELECT that matches what the target's extension really has.

The store's column names follow PG 17+ (pg_stat_statements 1.11): older targets map
blk_read_time/blk_write_time onto shared_blk_read_time/shared_blk_write_time, and columns a
version lacks (stats_since before 1.11) become NULL. Every column is cast to the staging
type so the COPY stream can go straight into the store.
"""
from __future__ import annotations

from dataclasses import dataclass

from .target import TargetError, TargetInfo


@dataclass(frozen=True)
class QueryFilter:
    """Databases and roles whose statements a target's query statistics and plans leave out,
    e.g. the store's own database when the store runs on a monitored server: its ingest
    functions, COPYs and MERGEs would otherwise crowd the target's top queries. Applied on
    the target (rows never leave it), by name, as bound parameters of constant SQL."""
    databases: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def params(self) -> dict:
        return {"exclude_databases": list(self.databases), "exclude_roles": list(self.roles)}


NO_FILTER = QueryFilter()

# pg_database and pg_roles are readable by every role; unknown names simply match nothing.
FILTER_SQL = ("dbid NOT IN (SELECT oid FROM pg_database WHERE datname = ANY(%(exclude_databases)s::text[])) "
              "AND userid NOT IN (SELECT oid FROM pg_roles WHERE rolname = ANY(%(exclude_roles)s::text[]))")

# staging column -> (candidate source columns in preference order, SQL type)
COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "dbid": (("dbid",), "oid"),
    "userid": (("userid",), "oid"),
    "queryid": (("queryid",), "bigint"),
    "toplevel": (("toplevel",), "boolean"),
    "stats_since": (("stats_since",), "timestamptz"),
    "plans": (("plans",), "bigint"),
    "total_plan_time": (("total_plan_time",), "float8"),
    "calls": (("calls",), "bigint"),
    "total_exec_time": (("total_exec_time",), "float8"),
    "min_exec_time": (("min_exec_time",), "float8"),
    "max_exec_time": (("max_exec_time",), "float8"),
    "mean_exec_time": (("mean_exec_time",), "float8"),
    "stddev_exec_time": (("stddev_exec_time",), "float8"),
    "rows": (("rows",), "bigint"),
    "shared_blks_hit": (("shared_blks_hit",), "bigint"),
    "shared_blks_read": (("shared_blks_read",), "bigint"),
    "shared_blks_dirtied": (("shared_blks_dirtied",), "bigint"),
    "shared_blks_written": (("shared_blks_written",), "bigint"),
    "local_blks_hit": (("local_blks_hit",), "bigint"),
    "local_blks_read": (("local_blks_read",), "bigint"),
    "temp_blks_read": (("temp_blks_read",), "bigint"),
    "temp_blks_written": (("temp_blks_written",), "bigint"),
    "shared_blk_read_time": (("shared_blk_read_time", "blk_read_time"), "float8"),
    "shared_blk_write_time": (("shared_blk_write_time", "blk_write_time"), "float8"),
    "wal_records": (("wal_records",), "bigint"),
    "wal_fpi": (("wal_fpi",), "bigint"),
    "wal_bytes": (("wal_bytes",), "numeric"),
}
REQUIRED = ("dbid", "userid", "queryid", "toplevel", "calls", "total_exec_time")


def select_sql(info: TargetInfo) -> str:
    if info.pgss_version is None:
        raise TargetError("pg_stat_statements is not installed in the target database: run "
                          "CREATE EXTENSION pg_stat_statements (it must also be listed in "
                          "shared_preload_libraries)")
    exprs = []
    for name, (candidates, sqltype) in COLUMNS.items():
        source = next((c for c in candidates if c in info.pgss_columns), None)
        if source is None and name in REQUIRED:
            raise TargetError(f"pg_stat_statements {info.pgss_version} has no {name} column: "
                              "pg_stat_statements 1.9 or newer is needed")
        exprs.append(f"{source}::{sqltype}" if source else f"NULL::{sqltype}")
    # queryid is NULL for entries whose text the user may not see; they cannot be keyed.
    # showtext := false: texts are large and never change, so they travel once (TEXTS_SQL).
    # Sorted by the store's key: MERGE then walks query_stats in index order (measured +5-16 %
    # per batch, more as the table settles into that order; bench/upsert_merge_vs_on_conflict.py).
    # Bind QueryFilter.params(): COPY takes no server-side parameters, psycopg binds them
    # client-side (quoted as literals).
    return (f"SELECT {', '.join(exprs)} FROM pg_stat_statements(false) "
            f"WHERE queryid IS NOT NULL AND {FILTER_SQL} ORDER BY dbid, userid, queryid, toplevel")


def copy_out_sql(info: TargetInfo) -> str:
    # Text, not binary: the stream passes through the collector unparsed either way, and
    # counters that are mostly small or zero take a third of the bytes as text (the target
    # session is pinned to DateStyle ISO and UTC, so the store parses it exactly).
    return f"COPY ({select_sql(info)}) TO STDOUT"


STAGE_COLUMNS = ", ".join(COLUMNS)

INFO_SQL = "SELECT dealloc, stats_reset FROM pg_stat_statements_info"

# Texts of the entries the collector has not sent yet (the target still reads its whole text
# file, but only new texts cross the network and reach the store).
TEXTS_SQL = ("SELECT DISTINCT ON (queryid) queryid, query FROM pg_stat_statements(true) "
             f"WHERE queryid IS NOT NULL AND NOT (queryid = ANY(%(known)s)) AND {FILTER_SQL} "
             "ORDER BY queryid")
