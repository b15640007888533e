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
import time
from collections import Counter, OrderedDict
from contextlib import ExitStack
from typing import NamedTuple

import psycopg
from psycopg.conninfo import make_conninfo

from . import metrics, pgss, target
from .batch import RowsBatch
from .index_advice import IndexAdvisor
from .session import hide_own_statements

log = logging.getLogger("pganalytics.collector.plans")

SHAPE_KEYS = ("Node Type", "Parent Relationship", "Subplan Name", "Join Type", "Strategy",
              "Partial Mode", "Operation", "Command", "Scan Direction", "Parallel Aware",
              "Relation Name", "Index Name", "CTE Name", "Function Name")
PLANNABLE = frozenset({"select", "insert", "update", "delete", "merge", "with", "values", "table"})
STMT = "pga_plan"
EXPLAIN_LOCK_TIMEOUT_MS = 50

# Every entry's total time without texts (cheap), then the texts of the chosen few. Time of
# top-level executions where there are any; `toplevel` is false for an entry only ever run
# inside a function (pg_stat_statements.track = all): EXPLAIN cannot resolve its PL/pgSQL
# variables, so it is passed over, and its text is never taken for a top-level one's.
TOTALS_SQL = f"""
SELECT s.queryid, s.dbid, d.datname,
       coalesce(sum(s.total_exec_time) FILTER (WHERE s.toplevel), sum(s.total_exec_time)),
       bool_or(s.toplevel)
FROM pg_stat_statements(false) s LEFT JOIN pg_database d ON d.oid = s.dbid
WHERE s.queryid IS NOT NULL AND {pgss.FILTER_SQL}
GROUP BY 1, 2, 3"""
TEXTS_SQL = """
SELECT DISTINCT ON (queryid, dbid) queryid, dbid, query FROM pg_stat_statements
WHERE queryid = ANY(%s) AND toplevel ORDER BY queryid, dbid, total_exec_time DESC"""


def rank(totals: list[tuple], previous: dict) -> list[tuple]:
    """(queryid, dbid, datname, total_ms, ...) rows, most time spent since `previous` (the totals
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


def _scalar(cur: psycopg.Cursor):
    """The one value of a statement that always returns one row."""
    row = cur.fetchone()
    assert row is not None
    return row[0]


def explain(conn: psycopg.Connection, text: str) -> list:
    """The generic plan of a `$n` text (never executes it)."""
    conn.execute("BEGIN READ ONLY")
    try:
        # Planning takes the tables' locks: behind a session holding a conflicting one, wait
        # briefly and give up (retried next capture). The connection is the one wait-event
        # ticks use, and a cycle stuck here would blind the sampler during lock contention.
        conn.execute(f"SET LOCAL lock_timeout = {EXPLAIN_LOCK_TIMEOUT_MS}")
        if conn.info.server_version >= 160000:
            return _scalar(conn.execute(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {text}", prepare=False))
        conn.execute(f"PREPARE {STMT} AS {text}", prepare=False)
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # reset by the rollback
        n = param_count(text)
        args = f"({', '.join(['NULL'] * n)})" if n else ""
        return _scalar(conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {STMT}{args}", prepare=False))
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


class NotPlanned(NamedTuple):
    outcome: str  # the metrics label: utility, no_text, no_database, no_connection, explain_failed
    reason: str  # for the log and the caller's list
    sqlstate: str | None = None
    lasting: bool = True  # worth remembering: not a timeout, lock wait or lost connection


# Conditions that may be gone at the next capture: retried then, never remembered.
TRANSIENT_SQLSTATES = ("57014", "55P03", "40001", "40P01")
TRANSIENT_CLASSES = ("08", "53", "57P")


def _explain_failed(exc: psycopg.Error) -> NotPlanned:
    code = exc.sqlstate or "?"
    transient = code in TRANSIENT_SQLSTATES or code.startswith(TRANSIENT_CLASSES)
    return NotPlanned("explain_failed", f"EXPLAIN failed ({code}): {str(exc).strip().splitlines()[0]}",
                      code, lasting=not transient)


def _plan_one(conns: dict, stack: ExitStack, conn_ref: str, datname: str, text: str) -> list | NotPlanned:
    """The plan, or why there is none."""
    if datname not in conns:
        try:
            conns[datname] = stack.enter_context(_connect(conn_ref, datname))
        except target.TargetError as exc:
            conns[datname] = str(exc)
    conn = conns[datname]
    if isinstance(conn, str):
        return NotPlanned("no_connection", conn)
    if conn.closed:
        return NotPlanned("no_connection", "the connection to its database was lost", lasting=False)
    try:
        return explain(conn, text)
    except psycopg.Error as exc:
        return _explain_failed(exc)


class PlanMemory:
    """What one target's captures keep between them: the totals of the last capture (to rank
    by time spent since), and which queries could not be planned, so that they are neither
    EXPLAINed nor logged again every capture (a utility statement, a query of a database the
    role may not enter, stay so). Bounded: an entry goes when pg_stat_statements drops or
    resets the query (its text may differ when it comes back), and beyond max_entries the
    oldest goes; after retry_after_s it is tried again (a grant or a table may have come)."""

    def __init__(self, totals: dict | None = None, retry_after_s: float = 3600.0,
                 max_entries: int = 2000, clock=time.monotonic):
        self.totals = {} if totals is None else totals  # (queryid, dbid) -> total_exec_time
        self.retry_after_s, self.max_entries, self.clock = retry_after_s, max_entries, clock
        self._unplannable: OrderedDict[tuple[int, int], tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._unplannable)

    def known(self, key: tuple[int, int]) -> bool:
        """Remembered as unplannable and not due for a retry yet."""
        entry = self._unplannable.get(key)
        return entry is not None and entry[1] > self.clock()

    def remember(self, key: tuple[int, int], reason: str) -> bool:
        """True when this is news (not the reason remembered before): worth one log line."""
        before = self._unplannable.pop(key, None)
        self._unplannable[key] = (reason, self.clock() + self.retry_after_s)
        while len(self._unplannable) > self.max_entries:
            self._unplannable.popitem(last=False)
        return before is None or before[0] != reason

    def forget(self, key: tuple[int, int]) -> None:
        self._unplannable.pop(key, None)

    def update(self, current: list[tuple]) -> None:
        """Adopt this capture's totals; forget entries gone from, or reset in, pg_stat_statements."""
        now = {(q, d): t for q, d, _, t, *_ in current}
        for key in [k for k in self._unplannable if k not in now or now[k] < self.totals.get(k, 0.0)]:
            del self._unplannable[key]
        self.totals.clear()
        self.totals.update(now)


def _candidates(current: list[tuple], memory: PlanMemory, want: int, counts: Counter) -> list[tuple]:
    """The `want` highest-ranked (queryid, dbid, datname) worth trying. Passed over, and
    counted: statements only ever run inside functions (EXPLAIN cannot resolve their PL/pgSQL
    variables) and the ones remembered as unplannable, so neither takes a slot."""
    chosen: list[tuple] = []
    for queryid, dbid, datname, _, toplevel in rank(current, memory.totals):
        if len(chosen) >= want:
            break
        if not toplevel:
            counts["not_toplevel"] += 1
        elif memory.known((queryid, dbid)):
            counts["remembered"] += 1
        else:
            chosen.append((queryid, dbid, datname))
    return chosen


def _count(instance: str, counts: Counter, sqlstates: Counter) -> None:
    for outcome, n in counts.items():
        metrics.REGISTRY.inc("pganalytics_collector_plan_queries_total",
                             {"instance": instance, "outcome": outcome}, n)
    for sqlstate, n in sqlstates.items():
        metrics.REGISTRY.inc("pganalytics_collector_plan_explain_errors_total",
                             {"instance": instance, "sqlstate": sqlstate}, n)


def _note(instance: str, memory: PlanMemory, key: tuple[int, int], datname, failure: NotPlanned,
          skipped: list[str]) -> None:
    """Report a query that was not planned; log it once, not at every capture."""
    where = f"query {key[0]} in {datname or key[1]}"
    news = memory.remember(key, failure.reason) if failure.lasting else True
    if news:
        skipped.append(f"{where}: {failure.reason}")
    # A utility statement has no plan by nature: nothing for a DBA to act on.
    level = logging.DEBUG if failure.outcome == "utility" or not news else logging.INFO
    later = f" (not tried again for {memory.retry_after_s / 60:.0f} min)" if failure.lasting else ""
    log.log(level, "plans %s: %s not planned: %s%s", instance, where, failure.reason, later)


def capture_plans(conn_ref: str, instance: str, limit: int = 10, totals: dict | None = None,
                  conn: psycopg.Connection | None = None, memory: PlanMemory | None = None,
                  query_filter: pgss.QueryFilter = pgss.NO_FILTER,
                  advisor: IndexAdvisor | None = None) -> tuple[RowsBatch, list[str]]:
    """Generic plans of the top `limit` plannable queries, as a RowsBatch of source "plans",
    and one reason per query newly found not plannable.

    Ranked by total_exec_time since the previous capture when the caller keeps a `memory`
    (or just its `totals` dict) between captures, else by cumulative time. Utility statements,
    statements run only inside functions, and queries remembered as unplannable use no slot.
    `query_filter`'s databases and roles are left out. `conn`, an open autocommit connection
    to the target (the daemon's kept one), is used for the ranking and for queries of its own
    database; other databases get a connection each. An `advisor` (kept between captures)
    is shown every plan while its database's connection is open (index advice, with hypopg)."""
    memory = PlanMemory(totals) if memory is None else memory
    rows: list[dict] = []
    skipped: list[str] = []
    counts: Counter = Counter()
    sqlstates: Counter = Counter()
    if advisor is not None:
        advisor.forget_connections()
    with ExitStack() as stack:
        first = conn if conn is not None else stack.enter_context(_connect(conn_ref))
        collected_at = _scalar(first.execute("SELECT statement_timestamp()"))
        current = first.execute(TOTALS_SQL, query_filter.params()).fetchall()
        chosen = _candidates(current, memory, limit * 4, counts)
        memory.update(current)
        texts = {(q, d): t for q, d, t in first.execute(TEXTS_SQL, ([c[0] for c in chosen],))}
        # datname -> connection, or why there is none
        conns: dict[str, psycopg.Connection | str] = {first.info.dbname: first}
        tried = 0
        for queryid, dbid, datname in chosen:
            if tried >= limit:
                break
            text = texts.get((queryid, dbid))
            plan: list | NotPlanned | None = _unplannable(text, datname, dbid)
            if plan is None:  # so there is a text and a database
                tried += 1
                plan = _plan_one(conns, stack, conn_ref, datname, text or "")
            key = (queryid, dbid)
            if isinstance(plan, NotPlanned):
                counts[plan.outcome] += 1
                sqlstates.update([plan.sqlstate] if plan.sqlstate else [])
                _note(instance, memory, key, datname, plan, skipped)
            else:
                counts["planned"] += 1
                memory.forget(key)
                h = plan_hash(plan)
                rows.append({"queryid": queryid, "dbid": dbid, "plan_hash": h, "plan": plan})
                db_conn = conns.get(datname)
                if advisor is not None and isinstance(db_conn, psycopg.Connection):
                    advisor.consider(db_conn, datname, queryid, dbid, text or "", plan, h, explain)
    _count(instance, counts, sqlstates)
    return RowsBatch(instance, "plans", collected_at, rows), skipped


def _unplannable(text: str | None, datname: str | None, dbid: int) -> NotPlanned | None:
    """Why a query cannot be planned before trying, or None."""
    reason = skip_reason(text)
    if reason:
        return NotPlanned("no_text" if not text else "utility", reason)
    if not datname:
        return NotPlanned("no_database", f"database {dbid} no longer exists")
    return None
