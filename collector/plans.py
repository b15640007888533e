"""Generic plans of the most expensive queries, with a hash of each plan's shape.

Nothing is executed. PG 16+: `EXPLAIN (GENERIC_PLAN, FORMAT JSON)` of pg_stat_statements' `$n`
text; PG 15: PREPARE it (types inferred), `EXPLAIN EXECUTE p(NULL, ...)` under plan_cache_mode =
force_generic_plan (else NULLs give a custom "One-Time Filter: false" plan). Each EXPLAIN runs in
a rolled-back READ ONLY transaction, under the target's timeouts, in the query's own database,
via the extended protocol (one statement only). What cannot be planned (utility, untypable $n,
objects or databases the role may not use) is a skipped reason, never a failed batch. PG 18's
`IN ($1 /*, ... */)` plans as a one-element list (the marker is a comment).
plan_hash (Python, blake2b-64 as signed bigint) covers node types, join types, strategies,
relation/index/CTE/function names and the tree; not costs, rows, widths or conditions.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from contextlib import ExitStack

import psycopg
from psycopg.conninfo import make_conninfo

from . import target
from .batch import RowsBatch
from .session import hide_own_statements

log = logging.getLogger("pganalytics.collector.plans")

SHAPE_KEYS = ("Node Type", "Parent Relationship", "Subplan Name", "Join Type", "Strategy",
              "Partial Mode", "Operation", "Command", "Scan Direction", "Parallel Aware",
              "Relation Name", "Index Name", "CTE Name", "Function Name")
PLANNABLE = frozenset({"select", "insert", "update", "delete", "merge", "with", "values", "table"})
STMT = "pga_plan"

# Every entry's total time without texts (cheap), then the texts of the chosen few.
TOTALS_SQL = """
SELECT s.queryid, s.dbid, d.datname, sum(s.total_exec_time)
FROM pg_stat_statements(false) s LEFT JOIN pg_database d ON d.oid = s.dbid
WHERE s.queryid IS NOT NULL GROUP BY 1, 2, 3"""
TEXTS_SQL = """
SELECT DISTINCT ON (queryid, dbid) queryid, dbid, query FROM pg_stat_statements
WHERE queryid = ANY(%s) ORDER BY queryid, dbid, total_exec_time DESC"""


def rank(totals: list[tuple], previous: dict) -> list[tuple]:
    """(queryid, dbid, datname, total_ms) rows, most time spent since `previous` (the totals
    of the last capture) first; an entry new or reset since then counts its whole total."""
    def spent(row):
        before = previous.get((row[0], row[1]))
        return row[3] - before if before is not None and row[3] >= before else row[3]
    return sorted(totals, key=spent, reverse=True)


_LEADING = re.compile(r"\s+|--[^\n]*(\n|$)|/\*.*?\*/|\(", re.S)


def first_keyword(text: str) -> str:
    """The first word of a statement after leading comments and parentheses, lower-cased."""
    pos = 0
    while m := _LEADING.match(text, pos):
        pos = m.end()
    word = re.match(r"[A-Za-z]+", text[pos:])
    return word.group(0).lower() if word else ""


def shape(node: dict) -> list:
    """The plan node's shape: selected keys plus its children's shapes, in order."""
    return [[k, node[k]] for k in SHAPE_KEYS if k in node] + [[shape(c) for c in node.get("Plans", [])]]


def plan_hash(plan: list | dict) -> int:
    """Stable signed 64-bit hash of an EXPLAIN (FORMAT JSON) plan's shape."""
    root = (plan[0] if isinstance(plan, list) else plan)["Plan"]
    digest = hashlib.blake2b(json.dumps(shape(root), separators=(",", ":")).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def param_count(text: str) -> int:
    return max((int(n) for n in re.findall(r"\$(\d+)", text)), default=0)


def explain(conn: psycopg.Connection, text: str) -> list:
    """The generic plan of a `$n` text (never executes it)."""
    conn.execute("BEGIN READ ONLY")
    try:
        if conn.info.server_version >= 160000:
            return conn.execute(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {text}", prepare=False).fetchone()[0]
        conn.execute(f"PREPARE {STMT} AS {text}", prepare=False)
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # reset by the rollback
        n = param_count(text)
        args = f"({', '.join(['NULL'] * n)})" if n else ""
        return conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {STMT}{args}", prepare=False).fetchone()[0]
    finally:
        conn.execute("ROLLBACK")
        if conn.info.server_version < 160000 and conn.execute(
                "SELECT 1 FROM pg_prepared_statements WHERE name = %s", (STMT,)).fetchone():
            conn.execute(f"DEALLOCATE {STMT}")  # a rollback does not remove it


def skip_reason(text: str | None) -> str | None:
    if not text:
        return "no query text (pg_stat_statements lost it or hides it from this role)"
    if first_keyword(text) not in PLANNABLE:
        return f"utility statement ({first_keyword(text).upper() or '?'}) has no plan"
    return None


def _connect(conn_ref: str, datname: str | None = None) -> psycopg.Connection:
    conn = target.connect(make_conninfo(target.conninfo(conn_ref), dbname=datname) if datname else conn_ref)
    conn.prepare_threshold = None  # no server-side prepared statements of our own
    hide_own_statements(conn)  # keep our EXPLAINs out of pg_stat_statements where allowed
    return conn


def _plan_one(conns: dict, stack: ExitStack, conn_ref: str, datname: str, text: str) -> list | str:
    """The plan, or why there is none."""
    if datname not in conns:
        try:
            conns[datname] = stack.enter_context(_connect(conn_ref, datname))
        except target.TargetError as exc:
            conns[datname] = str(exc)
    conn = conns[datname]
    if isinstance(conn, str) or conn.closed:
        return conn if isinstance(conn, str) else "the connection to its database was lost"
    try:
        return explain(conn, text)
    except psycopg.Error as exc:
        return f"EXPLAIN failed ({exc.sqlstate}): {str(exc).strip().splitlines()[0]}"


def _ranked(conn: psycopg.Connection, limit: int, totals: dict | None) -> list[tuple]:
    current = conn.execute(TOTALS_SQL).fetchall()
    chosen = rank(current, totals if totals is not None else {})[:limit * 4]
    texts = {(q, d): t for q, d, t in conn.execute(TEXTS_SQL, ([r[0] for r in chosen],))}
    if totals is not None:
        totals.clear()
        totals.update({(q, d): t for q, d, _, t in current})
    return [(q, d, n, texts.get((q, d))) for q, d, n, _ in chosen]


def capture_plans(conn_ref: str, instance: str, top: list[tuple[int, int, str | None, str | None]] | None = None,
                  limit: int = 10, totals: dict | None = None,
                  conn: psycopg.Connection | None = None) -> tuple[RowsBatch, list[str]]:
    """Generic plans of the top `limit` plannable queries, as a RowsBatch of source "plans",
    and one reason per query that was not planned.

    Ranked by total_exec_time since the previous capture when the caller keeps a `totals` dict
    between captures (it is updated here), else by cumulative time; or pass `top`, a ranking of
    (queryid, dbid, datname, query). Utility statements are reported and use no slot.
    `conn`, an open autocommit connection to the target (the daemon's kept one), is used for
    the ranking and for queries of its own database; other databases get a connection each."""
    rows: list[dict] = []
    skipped: list[str] = []
    with ExitStack() as stack:
        first = conn if conn is not None else stack.enter_context(_connect(conn_ref))
        collected_at = first.execute("SELECT statement_timestamp()").fetchone()[0]
        top = _ranked(first, limit, totals) if top is None else top
        # datname -> connection, or why there is none
        conns: dict[str, psycopg.Connection | str] = {first.info.dbname: first}
        tried = 0
        for queryid, dbid, datname, text in top:
            if tried >= limit:
                break
            plan = skip_reason(text) or (None if datname else f"database {dbid} no longer exists")
            if plan is None:
                tried += 1
                plan = _plan_one(conns, stack, conn_ref, datname, text)
            if isinstance(plan, list):
                rows.append({"queryid": queryid, "dbid": dbid, "plan_hash": plan_hash(plan), "plan": plan})
            else:
                skipped.append(f"query {queryid} in {datname or dbid}: {plan}")
                log.info("plans %s: query %s not planned: %s", instance, queryid, plan)
    return RowsBatch(instance, "plans", collected_at, rows), skipped
