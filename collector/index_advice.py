"""Index advice from the generic plans the collector captures: for a sequential scan whose
filter is selective (few of the table's rows pass), the index on the filtered columns, checked
on the target with hypopg where it is installed (a hypothetical index: nothing is built, the
planner is asked what the query would cost with it), as the CREATE INDEX CONCURRENTLY to run.

Columns: those the filter compares with a parameter or constant under AND only (an OR needs
another shape of index), equalities first in the filter's order, then at most one range
column. No advice when an index with that leading column exists (the planner had it and
chose the scan), when the filter is not selective (estimated rows over 5 % of the table) or
the table is small. With hypopg the advice stands only when the planner uses the index and
its cost falls by a fifth or more; without hypopg it is sent unchecked (cost_after NULL).
Each plan is advised on once per retry period (the same plan, the same answer).
"""
from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from datetime import datetime

import psycopg
from psycopg import sql

from .batch import RowsBatch

log = logging.getLogger("pganalytics.collector.index_advice")

MAX_SELECTIVITY = 0.05  # estimated rows out of the scan over the table's rows
MIN_TABLE_ROWS = 10_000  # below it a sequential scan is as good as any index
MIN_GAIN = 0.2  # hypothetical index: the plan's cost must fall at least this much
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
# a column compared with a parameter, a constant or an expression: "(customer = $1)",
# "((status)::text = 'x'::text)", "(created_at > $2)"; a column on either side
_COMPARISON = re.compile(rf"\(*({_IDENT})\)?(?:::[\w ]+(?:\[\])?)?\s*(=|<=|>=|<|>)\s*(?:\$\d+|'|-?\d|\(|{_IDENT}\()")
_REVERSED = re.compile(rf"(?:\$\d+|'[^']*'(?:::[\w ]+)?|-?\d+(?:\.\d+)?)\s*(=|<=|>=|<|>)\s*\(*({_IDENT})\)?")

TABLE_SQL = """
SELECT n.nspname, c.relname, c.reltuples,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       ARRAY(SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = c.oid AND i.indisvalid) AS leading_columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'"""


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident.lower()


def filter_columns(filter_text: str) -> list[str] | None:
    """Columns to index for a scan filter, equalities first; None when the filter has an OR
    or no column compared with a value."""
    if re.search(r"\bOR\b", filter_text) or "ANY (" in filter_text and "<>" in filter_text:
        return None
    equal: list[str] = []
    ranged: list[str] = []
    for m in _COMPARISON.finditer(filter_text):
        if re.search(r"[\w$\"]\(*$", filter_text[:m.start(1)]):
            continue  # a function's argument, "lower(email) = $1": an expression index's case
        col, op = _unquote(m.group(1)), m.group(2)
        (equal if op == "=" else ranged).append(col)
    for m in _REVERSED.finditer(filter_text):
        op, col = m.group(1), _unquote(m.group(2))
        (equal if op == "=" else ranged).append(col)
    cols = list(dict.fromkeys(equal))
    cols += [c for c in dict.fromkeys(ranged) if c not in cols][:1]
    return cols or None


def seq_scans(plan: list | dict) -> list[dict]:
    """Every Seq Scan node with a filter, anywhere in the plan."""
    out: list[dict] = []

    def walk(node: dict) -> None:
        if node.get("Node Type") == "Seq Scan" and node.get("Filter") and node.get("Relation Name"):
            out.append(node)
        for child in node.get("Plans", []):
            walk(child)
    walk((plan[0] if isinstance(plan, list) else plan)["Plan"])
    return out


def uses_hypothetical(plan: list | dict) -> bool:
    """hypopg names its indexes "<oid>btree_table_column"."""
    def walk(node: dict) -> bool:
        if str(node.get("Index Name", "")).startswith("<"):
            return True
        return any(walk(c) for c in node.get("Plans", []))
    return walk((plan[0] if isinstance(plan, list) else plan)["Plan"])


def total_cost(plan: list | dict) -> float:
    return float((plan[0] if isinstance(plan, list) else plan)["Plan"]["Total Cost"])


class IndexAdvisor:
    """Kept per target across captures: which plans were advised on lately, and the advice
    found since the last take()."""

    def __init__(self, retry_after_s: float = 600.0, max_entries: int = 2000, clock=time.monotonic):
        self.retry_after_s, self.max_entries, self.clock = retry_after_s, max_entries, clock
        self._seen: OrderedDict[tuple, float] = OrderedDict()
        self._hypopg: dict[str, str | None] = {}  # datname -> hypopg's schema, None when not installed
        self.rows: list[dict] = []

    def due(self, key: tuple) -> bool:
        at = self._seen.get(key)
        return at is None or at <= self.clock()

    def consider(self, conn: psycopg.Connection, datname: str, queryid: int, dbid: int, text: str,
                 plan: list, plan_hash: int, explain) -> None:
        """Advise on one captured plan (explain(conn, text) plans it again). Errors are logged
        and end the advice for this plan, never the capture."""
        key = (queryid, dbid, plan_hash)
        if not self.due(key):
            return
        self._seen.pop(key, None)
        self._seen[key] = self.clock() + self.retry_after_s
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        for node in seq_scans(plan):
            try:
                row = self._advise(conn, datname, queryid, text, plan, node, explain)
            except psycopg.Error as exc:
                log.info("index advice for query %s skipped: %s", queryid, str(exc).strip().splitlines()[0])
                _reset(conn, self._hypopg.get(datname))
                return
            if row:
                self.rows.append(row)

    def _advise(self, conn, datname, queryid, text, plan, node, explain) -> dict | None:
        cols = filter_columns(node["Filter"])
        if not cols:
            return None
        tables = conn.execute(TABLE_SQL, (node["Relation Name"],), prepare=False).fetchall()
        if len(tables) != 1:  # not visible, or the same name in several schemas (plans do not say which)
            return None
        schema, rel, reltuples, columns, leading = tables[0]
        if any(c not in columns for c in cols) or cols[0] in leading:
            return None
        if reltuples < MIN_TABLE_ROWS or float(node.get("Plan Rows", reltuples)) > MAX_SELECTIVITY * reltuples:
            return None
        stmt = sql.SQL("CREATE INDEX CONCURRENTLY ON {}.{} ({})").format(
            sql.Identifier(schema), sql.Identifier(rel), sql.SQL(", ").join(map(sql.Identifier, cols)))
        statement = stmt.as_string(conn)
        row = {"datname": datname, "queryid": queryid, "schemaname": schema, "relname": rel, "columns": cols,
               "create_statement": statement, "cost_before": total_cost(plan), "cost_after": None,
               "verified_with": None}
        hypopg = self._hypopg_schema(conn, datname)
        if hypopg is None:
            return row
        hypothetical = sql.SQL("CREATE INDEX ON {}.{} ({})").format(
            sql.Identifier(schema), sql.Identifier(rel), sql.SQL(", ").join(map(sql.Identifier, cols)))
        try:
            conn.execute(sql.SQL("SELECT indexrelid FROM {}.hypopg_create_index(%s::text)").format(sql.Identifier(hypopg)),
                         (hypothetical.as_string(conn),), prepare=False)
            after = explain(conn, text)
        finally:
            _reset(conn, hypopg)
        if not uses_hypothetical(after) or total_cost(after) > (1 - MIN_GAIN) * row["cost_before"]:
            return None
        return {**row, "cost_after": total_cost(after), "verified_with": "hypopg"}

    def _hypopg_schema(self, conn, datname: str) -> str | None:
        """The schema hypopg is installed in (its functions are called by that name only)."""
        if datname not in self._hypopg:
            found = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                                 "WHERE e.extname = 'hypopg'", prepare=False).fetchone()
            self._hypopg[datname] = found[0] if found else None
        return self._hypopg[datname]

    def forget_connections(self) -> None:
        """hypopg may be installed or dropped between captures: ask again next time."""
        self._hypopg.clear()

    def take(self, instance: str, collected_at: datetime) -> RowsBatch | None:
        rows, self.rows = self.rows, []
        return RowsBatch(instance, "index_advice", collected_at, rows) if rows else None


def _reset(conn: psycopg.Connection, hypopg: str | None) -> None:
    """Leave no transaction open and no hypothetical index (hypopg keeps them per backend)."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        if hypopg:
            conn.execute(sql.SQL("SELECT {}.hypopg_reset()").format(sql.Identifier(hypopg)), prepare=False)
    except psycopg.Error:
        pass  # no hypopg, or the connection is gone: nothing hypothetical is left either way
