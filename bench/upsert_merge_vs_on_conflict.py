#!/usr/bin/env python3
"""MERGE vs INSERT ... ON CONFLICT for the query_stats snapshot upsert, measured in one run.

A 1M-row `query_stats` (the real column set, PK, FK and fillfactor of
sql/schema/0002/02_query_stats.sql; 10 instances x 100k entries, each instance's rows
together as its first snapshot left them, in pg_stat_statements hash order) takes a
100k-row pg_stat_statements-like snapshot of one instance, staged by binary COPY into a
temp table as the collector does. Cases: every key exists; 90 % exist + 10 % new.
In the snapshot half the entries ran (counters grew), 0.1 % were reset, the rest are unchanged.

  (a) INSERT ... ON CONFLICT DO UPDATE          (b) MERGE, same semantics as (a)
  (c) the product's statement: a data-modifying CTE writing per-interval deltas + MERGE with
      reset detection, taken verbatim from sql/ingest/ingest_query_stats.sql
  (d) the fair baseline for (c): the same deltas INSERT ... SELECT, then ON CONFLICT with the
      same reset detection
  PG 18+ only, same output as (c)/(d), the target joined once instead of twice:
  (e) WITH u AS (MERGE ... RETURNING old.*, new.*) INSERT INTO deltas ...
  (f) WITH u AS (INSERT ... ON CONFLICT ... RETURNING old.*, new.*) INSERT INTO deltas ...
The first run of each method is fingerprinted (md5 of what it wrote) and the methods must agree.

Each run upserts a different instance's 100k rows (disjoint parts of the table and index),
so one reset of the table (rebuilt from a saved 1M-row copy + PK + VACUUM FREEZE ANALYZE)
serves 10 runs; a CHECKPOINT precedes every run, so every run starts from the same state
(clean buffers; its first change of each page writes a full-page image, as after any checkpoint).
Times: COPY into staging, ANALYZE of staging, and the upsert statement(s) + COMMIT (the
rows/s) are reported separately. Knobs are changed one at a time from the tuned setup.

  .venv/bin/python bench/upsert_merge_vs_on_conflict.py                  # newest local PG
  .venv/bin/python bench/upsert_merge_vs_on_conflict.py --pg-bindir "$(scripts/pg-bindir.sh 18)"
  .venv/bin/python bench/upsert_merge_vs_on_conflict.py --dsn "host=... dbname=scratch"

With --dsn it works in a scratch schema `bench` (dropped at the end) and needs a superuser
(or pg_checkpoint) for CHECKPOINT. Writes bench/results/upsert-pgNN.json.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pganalytics import localpg  # noqa: E402 - importable only after the sys.path line above

INGEST_SQL = ROOT / "sql" / "ingest" / "merge_query_stats.sql"
KEY = ["dbid", "userid", "queryid", "toplevel"]
COUNTERS = ["plans", "total_plan_time", "calls", "total_exec_time", "min_exec_time",
            "max_exec_time", "mean_exec_time", "stddev_exec_time", "rows", "shared_blks_hit",
            "shared_blks_read", "shared_blks_dirtied", "shared_blks_written", "local_blks_hit",
            "local_blks_read", "temp_blks_read", "temp_blks_written", "shared_blk_read_time",
            "shared_blk_write_time", "wal_records", "wal_fpi", "wal_bytes"]
STAGE = KEY + ["stats_since"] + COUNTERS  # staged columns (query text left NULL)
PREV_AT, COLLECTED_AT = "2026-01-01 00:00:00+00", "2026-01-01 00:01:00+00"
INSTANCES, PER_INSTANCE, NEW_KEYS = 10, 100_000, 10_000
CASES = {"all": "all keys exist", "new10": "90% exist + 10% new"}
METHODS = {"a": "INSERT ON CONFLICT", "b": "MERGE",
           "c": "CTE deltas + MERGE (product)", "d": "deltas INSERT + ON CONFLICT"}
# PG 18+: RETURNING old.* hands the previous counters to the deltas INSERT, so the target is
# joined once instead of twice (same semantics and output as (c) and (d)).
METHODS_18 = {"e": "MERGE RETURNING old → deltas", "f": "ON CONFLICT RETURNING old → deltas"}
DELTA_COLS = ["calls", "plans", "total_plan_time", "total_exec_time", "rows", "shared_blks_hit",
              "shared_blks_read", "shared_blks_dirtied", "shared_blks_written", "temp_blks_read",
              "temp_blks_written", "shared_blk_read_time", "wal_bytes"]
RESET_TEST = ("(%(reset)s::timestamptz IS NOT NULL AND %(reset)s::timestamptz > %(prev)s::timestamptz)")


def reset_cond(s: str) -> str:
    """The product's reset rule, with `s` the incoming row's alias (s or EXCLUDED)."""
    return (f"({s}.calls < t.calls OR {s}.total_exec_time < t.total_exec_time "
            f"OR {s}.stats_since IS DISTINCT FROM t.stats_since OR {RESET_TEST})")


def changed_cond(s: str) -> str:
    """Like the product, entries that did not run in the interval are not rewritten."""
    return f"({s}.calls <> t.calls OR {s}.plans <> t.plans OR {reset_cond(s)})"
TUNED = {"fillfactor": 70, "layout": "random", "order": "client", "analyze": False,
         "work_mem": None, "plan": None}
TUNED_NAME = "tuned (the main table's setup)"
# Each knob changes one thing from TUNED.
KNOBS = {
    TUNED_NAME: {},
    "unsorted input (pgss hash order)": {"order": "none"},
    "unsorted input + ORDER BY pk in the statement": {"order": "statement"},
    "ANALYZE staging first (its time not counted)": {"analyze": True},
    "fillfactor 100": {"fillfactor": 100},
    "table rows in PK order too (always loaded sorted)": {"layout": "pk"},
    "work_mem 64MB": {"work_mem": "64MB"},
    "force nested loop (hash/merge join off)": {"plan": "nestloop"},
}

SCRATCH_COMMENT = "pganalytics upsert benchmark scratch"
SETTINGS = {  # for the throwaway cluster: enough memory that the table stays in shared_buffers
    "shared_buffers": "'4GB'", "max_wal_size": "'16GB'", "checkpoint_timeout": "'1h'",
    "autovacuum": "off", "jit": "off", "synchronize_seqscans": "off",
}


def qs_table_sql(fillfactor: int) -> str:
    cols = ",\n".join(f"    {c} {t}" for c, t in [
        ("instance_id", "int NOT NULL"), ("dbid", "oid NOT NULL"), ("userid", "oid NOT NULL"),
        ("queryid", "bigint NOT NULL"), ("toplevel", "boolean NOT NULL"),
        ("collected_at", "timestamptz NOT NULL"), ("first_seen_at", "timestamptz NOT NULL"),
        ("stats_since", "timestamptz"), ("resets", "int NOT NULL DEFAULT 0"),
        *[(c, f"{COLTYPE[c]} NOT NULL DEFAULT 0") for c in COUNTERS]])
    return (f"CREATE TABLE bench.query_stats (\n{cols}\n) WITH (fillfactor = {fillfactor}, "
            "autovacuum_enabled = false)")


COLTYPE = {c: "float8" if "time" in c else "bigint" for c in COUNTERS} | {"wal_bytes": "numeric"}

SCHEMA_SQL = f"""
CREATE SCHEMA bench;
COMMENT ON SCHEMA bench IS '{SCRATCH_COMMENT}';
CREATE TABLE bench.instances (instance_id int PRIMARY KEY);
INSERT INTO bench.instances SELECT generate_series(1, {INSTANCES});
CREATE UNLOGGED TABLE bench.query_stats_stage (
    dbid oid NOT NULL, userid oid NOT NULL, queryid bigint NOT NULL, toplevel boolean NOT NULL,
    stats_since timestamptz,
    {", ".join(f"{c} {COLTYPE[c]} NOT NULL DEFAULT 0" for c in COUNTERS)},
    query text);
CREATE TABLE bench.query_stat_deltas (
    instance_id int NOT NULL, dbid oid NOT NULL, userid oid NOT NULL, queryid bigint NOT NULL,
    toplevel boolean NOT NULL, collected_at timestamptz NOT NULL, interval_s float8,
    after_reset boolean NOT NULL DEFAULT false, calls bigint NOT NULL, plans bigint NOT NULL,
    total_plan_time float8 NOT NULL, total_exec_time float8 NOT NULL,
    exec_time_sq float8 NOT NULL, rows bigint NOT NULL, shared_blks_hit bigint NOT NULL,
    shared_blks_read bigint NOT NULL, shared_blks_dirtied bigint NOT NULL,
    shared_blks_written bigint NOT NULL, temp_blks_read bigint NOT NULL,
    temp_blks_written bigint NOT NULL, shared_blk_read_time float8 NOT NULL,
    wal_bytes numeric NOT NULL
) PARTITION BY RANGE (collected_at);
CREATE INDEX ON bench.query_stat_deltas USING brin (collected_at);
CREATE INDEX ON bench.query_stat_deltas (instance_id, queryid, collected_at);
CREATE TABLE bench.query_stat_deltas_p20260101 PARTITION OF bench.query_stat_deltas
    FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-01-02 00:00+00')
    WITH (autovacuum_enabled = false);
"""

# Keys 1..100k exist in every instance; 100001..110000 are the new ones. Counters of key i
# are the same in every instance, so one staged snapshot fits whichever instance a run uses.
DATA_SQL = f"""
SELECT setseed(0.42);
CREATE TABLE bench.base AS
SELECT i, (16384 + i % 7)::oid AS dbid, (10 + (i * 31) % 13)::oid AS userid,
       ('x' || substr(md5(i::text), 1, 16))::bit(64)::bigint AS queryid, (i % 20 <> 0) AS toplevel,
       c AS calls, c * m AS total_exec_time, m * random() * 0.5 AS min_exec_time,
       m * (1 + random() * 10) AS max_exec_time, m AS mean_exec_time, m * random() AS stddev_exec_time,
       c * (random() * 10)::int AS rows, c * (random() * 100)::bigint AS shared_blks_hit,
       c * (random() * 3)::bigint AS shared_blks_read, (c * random())::bigint AS shared_blks_dirtied,
       (c * random() * 0.1)::bigint AS shared_blks_written, (c * random() * 2)::bigint AS wal_records,
       (c * random() * 0.05)::bigint AS wal_fpi, round((c * random() * 300)::numeric) AS wal_bytes
FROM generate_series(1, {PER_INSTANCE + NEW_KEYS}) i,
     LATERAL (SELECT 1 + (random() * 100000)::bigint + i * 0 AS c, 0.05 + random() * 20 + i * 0 AS m) r;
CREATE TABLE bench.seed AS
SELECT n AS instance_id, dbid, userid, queryid, toplevel,
       '{PREV_AT}'::timestamptz AS collected_at, '2025-12-01 00:00+00'::timestamptz AS first_seen_at,
       '2025-12-01 00:00+00'::timestamptz AS stats_since, 0 AS resets,
       {", ".join(c if c in ("calls", "total_exec_time", "min_exec_time", "max_exec_time",
                              "mean_exec_time", "stddev_exec_time", "rows", "shared_blks_hit",
                              "shared_blks_read", "shared_blks_dirtied", "shared_blks_written",
                              "wal_records", "wal_fpi", "wal_bytes")
                  else f"0::{COLTYPE[c]} AS {c}" for c in COUNTERS)}
FROM generate_series(1, {INSTANCES}) n, bench.base b
WHERE b.i <= {PER_INSTANCE}
ORDER BY n, md5('heap' || b.i);
CREATE TABLE bench.snap AS
SELECT b.i, dbid, userid, queryid, toplevel,
       CASE WHEN reset THEN '2026-01-01 00:00:30+00' ELSE '2025-12-01 00:00+00' END::timestamptz AS stats_since,
       0::bigint AS plans, 0::float8 AS total_plan_time,
       CASE WHEN reset THEN d ELSE calls + d END AS calls,
       CASE WHEN reset THEN d * mean_exec_time ELSE total_exec_time + d * mean_exec_time END AS total_exec_time,
       min_exec_time, max_exec_time, mean_exec_time, stddev_exec_time,
       CASE WHEN reset THEN d ELSE rows + d * 3 END AS rows,
       CASE WHEN reset THEN d * 7 ELSE shared_blks_hit + d * 40 END AS shared_blks_hit,
       CASE WHEN reset THEN 0 ELSE shared_blks_read + d END AS shared_blks_read,
       shared_blks_dirtied, shared_blks_written, 0::bigint AS local_blks_hit, 0::bigint AS local_blks_read,
       0::bigint AS temp_blks_read, 0::bigint AS temp_blks_written, 0::float8 AS shared_blk_read_time,
       0::float8 AS shared_blk_write_time, wal_records + d AS wal_records, wal_fpi,
       wal_bytes + d * 120 AS wal_bytes
FROM bench.base b,
     LATERAL (SELECT b.i % 1000 = 7 AS reset,
                     CASE WHEN b.i > {PER_INSTANCE} OR b.i % 2 = 0 OR b.i % 1000 = 7
                          THEN 1 + (random() * 1000)::bigint ELSE 0 END AS d) x;
"""
CASE_WHERE = {"all": f"i <= {PER_INSTANCE}",
              "new10": f"(i <= {PER_INSTANCE} AND i % 10 <> 3) OR i > {PER_INSTANCE}"}


def product_statement() -> tuple[str, str]:
    """The CTE + MERGE statement of the product's ingest function, retargeted to `bench`,
    and the prefix (its cmp/base/deltas CTEs) that method (d) reuses for the deltas."""
    text = INGEST_SQL.read_text()
    m = re.search(r"\n(\s*WITH cmp AS \(.*?MERGE INTO .*?);\s*\n\s*GET DIAGNOSTICS", text, re.DOTALL)
    if not m:
        raise SystemExit(f"cannot find the WITH cmp ... MERGE statement in {INGEST_SQL}")
    stmt = m.group(1).replace("%", "%%").replace("pganalytics.", "bench.")
    # The product reads its transaction's rows of the shared staging table (stage_xid,
    # batch_no); the bench stages one snapshot per temp table, so it reads all of that.
    stmt = stmt.replace("FROM bench.query_stats_stage s", "FROM pg_temp.stage_query_stats s")
    stmt = re.sub(r"\n\s*WHERE s\.stage_xid = p_xid AND s\.batch_no = p_batch_no", "", stmt)
    for var, ph in [("p_instance_id", "%(iid)s::int"), ("p_collected_at", "%(ts)s::timestamptz"),
                    ("prev_at", "%(prev)s::timestamptz"), ("p_stats_reset", "%(reset)s::timestamptz")]:
        stmt = re.sub(rf"\b{var}\b", ph, stmt)
    cut = stmt.index("MERGE INTO bench.query_stats")
    return stmt, stmt[:cut] + "SELECT 1"


def on_conflict_sql(order: str, detect_resets: bool) -> str:
    cols = ["instance_id", *KEY, "collected_at", "first_seen_at", "stats_since", *COUNTERS]
    sel = ["%(iid)s::int", *(f"s.{c}" for c in KEY), "%(ts)s::timestamptz", "%(ts)s::timestamptz",
           "s.stats_since", *(f"s.{c}" for c in COUNTERS)]
    sets = [f"{c} = EXCLUDED.{c}" for c in ["collected_at", "stats_since", *COUNTERS]]
    where = ""
    if detect_resets:
        sets.insert(2, f"resets = t.resets + {reset_cond('EXCLUDED')}::int")
        where = f" WHERE {changed_cond('EXCLUDED')}"
    order_by = f" ORDER BY {', '.join(KEY)}" if order == "statement" else ""
    return (f"INSERT INTO bench.query_stats AS t ({', '.join(cols)})\n"
            f"SELECT {', '.join(sel)} FROM pg_temp.stage_query_stats s{order_by}\n"
            f"ON CONFLICT (instance_id, {', '.join(KEY)}) DO UPDATE SET {', '.join(sets)}{where}")


def merge_sql(order: str, detect_resets: bool = False) -> str:
    src = ("(SELECT * FROM pg_temp.stage_query_stats ORDER BY " + ", ".join(KEY) + ")"
           if order == "statement" else "pg_temp.stage_query_stats")
    cols = ["instance_id", *KEY, "collected_at", "first_seen_at", "stats_since", *COUNTERS]
    vals = ["%(iid)s::int", *(f"s.{c}" for c in KEY), "%(ts)s::timestamptz", "%(ts)s::timestamptz",
            "s.stats_since", *(f"s.{c}" for c in COUNTERS)]
    on = " AND ".join(["t.instance_id = %(iid)s::int", *(f"t.{c} = s.{c}" for c in KEY)])
    sets = ["collected_at = %(ts)s::timestamptz", "stats_since = s.stats_since",
            *(f"{c} = s.{c}" for c in COUNTERS)]
    matched = "WHEN MATCHED"
    if detect_resets:
        sets.insert(2, f"resets = t.resets + {reset_cond('s')}::int")
        matched = f"WHEN MATCHED AND {changed_cond('s')}"
    return (f"MERGE INTO bench.query_stats t USING {src} s ON {on}\n"
            f"{matched} THEN UPDATE SET {', '.join(sets)}\n"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join(vals)})")


def returning_deltas_sql(upsert: str) -> str:
    """WITH u AS (<upsert> RETURNING new and old counters) INSERT INTO deltas ...: the product's
    delta expressions, fed by RETURNING old.* (PG 18) instead of a second join."""
    ret = [f"new.{c}" for c in KEY] + [f"new.{c}" for c in DELTA_COLS] + [
        "new.stddev_exec_time", "new.mean_exec_time", *(f"old.{c} AS o_{c}" for c in DELTA_COLS),
        "old.calls * (old.stddev_exec_time ^ 2 + old.mean_exec_time ^ 2) AS o_sq",
        "coalesce(new.resets > old.resets, false) AS was_reset"]
    z = "CASE WHEN from_zero THEN 0 ELSE o_{} END"
    exprs = [f"{c} - {z.format(c)}" for c in ("calls", "plans", "total_plan_time", "total_exec_time")]
    exprs.append(f"greatest(calls * (stddev_exec_time ^ 2 + mean_exec_time ^ 2) - {z.format('sq')}, 0)")
    exprs.append(f"rows - {z.format('rows')}")
    exprs += [f"greatest({c} - {z.format(c)}, 0)" for c in DELTA_COLS[5:]]
    return (f"WITH u AS ({upsert}\nRETURNING {', '.join(ret)}),\n"
            "base AS (SELECT u.*, (o_calls IS NULL OR was_reset) AS from_zero FROM u)\n"
            "INSERT INTO bench.query_stat_deltas (instance_id, dbid, userid, queryid, toplevel, "
            "collected_at, interval_s, after_reset, calls, plans, total_plan_time, total_exec_time, "
            "exec_time_sq, rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied, "
            "shared_blks_written, temp_blks_read, temp_blks_written, shared_blk_read_time, wal_bytes)\n"
            f"SELECT %(iid)s::int, {', '.join(KEY)}, %(ts)s::timestamptz, "
            "extract(epoch FROM %(ts)s::timestamptz - %(prev)s::timestamptz), was_reset, "
            f"{', '.join(exprs)}\nFROM base\nWHERE %(prev)s::timestamptz IS NOT NULL "
            "AND (from_zero OR calls <> o_calls OR plans <> o_plans) AND calls > 0")


class Bench:
    def __init__(self, conn: psycopg.Connection, log):
        self.conn, self.log = conn, log
        self.table: tuple | None = None
        self.free_slots: list[int] = []
        self.resets: list[float] = []
        self.product, self.product_deltas = product_statement()

    def setup(self) -> dict:
        c = self.conn
        if c.execute("SELECT to_regnamespace('bench')").fetchone()[0] is not None:
            if c.execute("SELECT obj_description('bench'::regnamespace, 'pg_namespace')"
                         ).fetchone()[0] != SCRATCH_COMMENT:
                raise SystemExit("schema `bench` exists and is not this benchmark's: refusing to drop it")
            c.execute("DROP SCHEMA bench CASCADE")
        t0 = time.perf_counter()
        c.execute(SCHEMA_SQL)
        c.execute(DATA_SQL)
        c.execute("VACUUM (FREEZE, ANALYZE) bench.seed")
        self.snapshots = {}
        for case, where in CASE_WHERE.items():
            for order, order_by in [("none", "md5('pgss' || i)"), ("client", ", ".join(KEY))]:
                buf = bytearray()
                with c.cursor().copy(f"COPY (SELECT {', '.join(STAGE)} FROM bench.snap WHERE {where} "
                                     f"ORDER BY {order_by}) TO STDOUT (FORMAT BINARY)") as cp:
                    for chunk in cp:
                        buf += chunk
                self.snapshots[case, order] = bytes(buf)
        counts = {case: c.execute(f"SELECT count(*) FROM bench.snap WHERE {w}").fetchone()[0]
                  for case, w in CASE_WHERE.items()}
        self.rows = counts
        self.log(f"setup: data generated in {time.perf_counter() - t0:.1f}s, snapshot rows {counts}, "
                 f"{len(self.snapshots['all', 'none']) / 1e6:.1f} MB binary COPY per snapshot")
        return counts

    def reset(self, fillfactor: int, layout: str) -> None:
        t0 = time.perf_counter()
        c = self.conn
        c.execute("DROP TABLE IF EXISTS bench.query_stats")
        c.execute(qs_table_sql(fillfactor))
        # seed rows are grouped by instance, in pg_stat_statements hash order within one
        c.execute("INSERT INTO bench.query_stats SELECT * FROM bench.seed"
                  + (f" ORDER BY instance_id, {', '.join(KEY)}" if layout == "pk" else ""))
        c.execute(f"ALTER TABLE bench.query_stats ADD PRIMARY KEY (instance_id, {', '.join(KEY)})")
        c.execute("ALTER TABLE bench.query_stats ADD FOREIGN KEY (instance_id) "
                  "REFERENCES bench.instances ON DELETE CASCADE NOT VALID")
        c.execute("VACUUM (FREEZE, ANALYZE) bench.query_stats")
        self.table, self.free_slots = (fillfactor, layout), list(range(1, INSTANCES + 1))
        self.resets.append(time.perf_counter() - t0)

    def slot(self, fillfactor: int, layout: str) -> int:
        if self.table != (fillfactor, layout) or not self.free_slots:
            self.reset(fillfactor, layout)
        return self.free_slots.pop(0)

    def statements(self, method: str, order: str) -> list[str]:
        if method in ("e", "f"):
            return [returning_deltas_sql(merge_sql(order, detect_resets=True) if method == "e"
                                         else on_conflict_sql(order, detect_resets=True))]
        if method == "a":
            return [on_conflict_sql(order, detect_resets=False)]
        if method == "b":
            return [merge_sql(order)]
        if method == "c":
            return [self.product]
        return [self.product_deltas, on_conflict_sql(order, detect_resets=True)]


    def run(self, method: str, case: str, cfg: dict, explain: bool = False) -> dict:
        iid = self.slot(cfg["fillfactor"], cfg["layout"])
        c = self.conn
        t_prep = time.perf_counter()
        c.execute("TRUNCATE bench.query_stat_deltas")
        c.execute("DROP TABLE IF EXISTS pg_temp.stage_query_stats")
        c.execute("CREATE TEMP TABLE stage_query_stats (LIKE bench.query_stats_stage "
                  "INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        c.execute("RESET work_mem; RESET enable_hashjoin; RESET enable_mergejoin")
        if cfg["work_mem"]:
            c.execute(f"SET work_mem = '{cfg['work_mem']}'")
        if cfg["plan"] == "nestloop":
            c.execute("SET enable_hashjoin = off; SET enable_mergejoin = off")
        t_ckpt = time.perf_counter()
        c.execute("CHECKPOINT")
        prep = {"prep_s": time.perf_counter() - t_prep, "checkpoint_s": time.perf_counter() - t_ckpt}
        params = {"iid": iid, "ts": COLLECTED_AT, "prev": PREV_AT, "reset": None}
        data = self.snapshots[case, "client" if cfg["order"] == "client" else "none"]
        out: dict = {"method": method, "case": case, "instance": iid, **prep}
        with c.cursor() as cur:
            cur.execute("BEGIN")
            t0 = time.perf_counter()
            with cur.copy(f"COPY pg_temp.stage_query_stats ({', '.join(STAGE)}) "
                          "FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(data)
            out["copy_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if cfg["analyze"]:
                cur.execute("ANALYZE pg_temp.stage_query_stats")
            out["analyze_s"] = time.perf_counter() - t0
            stmts = self.statements(method, cfg["order"])
            if explain:
                out["plan"] = [plan_summary(cur.execute("EXPLAIN (FORMAT JSON) " + s, params)
                                            .fetchone()[0][0]["Plan"]) for s in stmts]
            # Pending table counters can still hold earlier transactions' counts until the
            # backend flushes them (PG 15+), so take the difference around the statements.
            counts_sql = ("SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, (SELECT n_tup_ins FROM "
                          "pg_stat_xact_user_tables WHERE relid = 'bench.query_stat_deltas_p20260101'"
                          "::regclass) FROM pg_stat_xact_user_tables "
                          "WHERE relid = 'bench.query_stats'::regclass")
            before = cur.execute(counts_sql).fetchone()
            t0 = time.perf_counter()
            for s in stmts:
                cur.execute(s, params)
            out["stmt_s"] = time.perf_counter() - t0
            ins, upd, hot, deltas = (a - b for a, b in zip(cur.execute(counts_sql).fetchone(), before))
            t0 = time.perf_counter()
            cur.execute("COMMIT")
            out["commit_s"] = time.perf_counter() - t0
        out["upsert_s"] = out["stmt_s"] + out["commit_s"]
        if explain:  # fingerprints of what the run wrote, to check that methods agree
            cols = ", ".join(["collected_at", "first_seen_at", "stats_since", *COUNTERS])
            out["table_md5"], out["deltas_md5"] = c.execute(
                f"SELECT (SELECT md5(string_agg(({', '.join(KEY)}, resets, {cols})::text, ',' "
                f"ORDER BY {', '.join(KEY)})) FROM bench.query_stats WHERE instance_id = %s), "
                f"(SELECT md5(string_agg(({', '.join(KEY)}, collected_at, interval_s, after_reset, "
                f"calls, plans, total_exec_time, exec_time_sq, rows, shared_blks_hit, wal_bytes)::text, "
                f"',' ORDER BY {', '.join(KEY)})) FROM bench.query_stat_deltas)", (iid,)).fetchone()
        out["rows"] = self.rows[case]
        out.update(inserted=ins, updated=upd, hot_updated=hot, deltas=deltas)
        # Plain upserts write every row; the product's rule (c-f) leaves unchanged entries alone,
        # so it writes exactly the entries that get a delta.
        expected = out["rows"] if method in ("a", "b") else deltas
        if upd + ins != expected:
            raise RuntimeError(f"method {method} {case}: {ins} inserted + {upd} updated != {expected}")
        return out


def plan_summary(node: dict) -> str:
    """Join and scan shape of a plan, e.g. 'Merge(Hash Join[Right](Seq Scan query_stats, ...))'."""
    name = node.get("Operation", node["Node Type"]) if node["Node Type"] == "ModifyTable" \
        else node["Node Type"]
    if "Join Type" in node and ("Join" in name or name == "Nested Loop"):
        name = f"{name}[{node['Join Type']}]"
    if "Scan" in name and node.get("Relation Name"):
        name += " " + node["Relation Name"]
    if "Scan" in name and node.get("CTE Name"):
        name += " " + node["CTE Name"]
    kids = []
    for k in node.get("Plans", []):
        text = plan_summary(k)
        if k.get("Subplan Name"):
            text = f"{k['Subplan Name']}: {text}"
        kids.append(text)
    if name in ("Hash", "Materialize", "Result", "Memoize", "Gather") and len(kids) == 1:
        return kids[0]
    return f"{name}({', '.join(kids)})" if kids else name


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def summarize(runs: list[dict]) -> dict:
    upd = sum(r["updated"] for r in runs)
    return {"n": len(runs), "rows": runs[0]["rows"],
            "upsert_s": med(runs, "upsert_s"), "rows_per_s": runs[0]["rows"] / med(runs, "upsert_s"),
            "stmt_s": med(runs, "stmt_s"), "commit_s": med(runs, "commit_s"),
            "copy_s": med(runs, "copy_s"), "analyze_s": med(runs, "analyze_s"),
            "min_upsert_s": min(r["upsert_s"] for r in runs), "max_upsert_s": max(r["upsert_s"] for r in runs),
            "hot_share": (sum(r["hot_updated"] for r in runs) / upd) if upd else None,
            "deltas": runs[0]["deltas"], "plan": next((r["plan"] for r in runs if "plan" in r), None)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pg-bindir", help="server binaries for the throwaway cluster (default: newest installed)")
    ap.add_argument("--dsn", help="use this database instead of a throwaway cluster")
    ap.add_argument("--reps", type=int, default=5, help="runs per method and case (default 5)")
    ap.add_argument("--knob-reps", type=int, default=3, help="runs per knob setting (default 3)")
    ap.add_argument("--no-knobs", action="store_true", help="skip the knob table")
    ap.add_argument("--out", help="JSON results path (default bench/results/upsert-pgNN.json)")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_before = os.getloadavg()
    cluster = None
    try:
        if args.dsn:
            dsn = args.dsn
        else:
            bindir = localpg.find_bindir(args.pg_bindir)
            settings = dict(SETTINGS)
            pkglib = bindir.parent / "lib"
            if not any((d / "pg_stat_statements.so").exists()
                       for d in (pkglib, pkglib / "postgresql", Path(str(bindir).replace("/bin", "/lib")))):
                settings["shared_preload_libraries"] = "''"
            base = Path(tempfile.mkdtemp(prefix="pga-bench-", dir="/tmp"))
            cluster = localpg.LocalCluster(base / "data", localpg.free_port(), bindir)
            log(f"starting a throwaway cluster from {bindir} in {cluster.datadir}")
            cluster.init(settings)
            cluster.start()
            dsn = cluster.dsn
            localpg.wait_ready(dsn)
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
            conn.execute("SET jit = off")
            try:
                result = bench(conn, args, log)
            finally:
                drop_scratch(conn)
            result["server"]["throwaway_cluster"] = cluster is not None
            result["server"]["bindir"] = (str(bindir.relative_to(ROOT)) if bindir.is_relative_to(ROOT)
                                          else str(bindir)) if cluster else None
            result["server"]["cluster_settings"] = (
                {k: v.strip("'") for k, v in settings.items()} if cluster else None)
        result["total_s"] = round(time.perf_counter() - started, 1)
        result["machine"]["loadavg_before_after"] = [list(load_before), list(os.getloadavg())]
        major = result["server"]["version_num"] // 10000
        out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"upsert-pg{major}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(report(result))
        log(f"wrote {out} (total {result['total_s']}s)")
        return 0
    finally:
        if cluster is not None:
            cluster.destroy()
            try:
                cluster.datadir.parent.rmdir()
            except OSError:
                pass


def drop_scratch(conn: psycopg.Connection) -> None:
    """Drop the scratch schema, only if it is this benchmark's (also after a failure)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    if conn.execute("SELECT obj_description(to_regnamespace('bench'), 'pg_namespace') = %s",
                    (SCRATCH_COMMENT,)).fetchone()[0]:
        conn.execute("DROP SCHEMA bench CASCADE")


def bench(conn: psycopg.Connection, args, log) -> dict:
    b = Bench(conn, log)
    t_start = time.perf_counter()
    info = conn.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
                        "current_setting('shared_buffers'), current_setting('work_mem'), "
                        "current_setting('shared_preload_libraries'), current_setting('fsync'), "
                        "current_setting('synchronous_commit'), current_setting('full_page_writes')").fetchone()
    log(f"server {info[0]}")
    b.setup()
    main_runs: list[dict] = []
    methods = METHODS | (METHODS_18 if info[1] >= 180000 else {})
    order = list(methods)
    for m in "ab":  # warm-up, not counted: the first runs on a fresh server are slower
        b.run(m, "new10", TUNED)
    log(f"warm-up done ({time.perf_counter() - t_start:.0f}s)")
    for rep in range(args.reps):
        for case in CASES:
            rot = order[rep % len(order):] + order[:rep % len(order)]  # no method always runs first after a reset
            for m in rot:
                r = b.run(m, case, TUNED, explain=(rep == 0))
                r["rep"] = rep
                main_runs.append(r)
        log(f"rep {rep + 1}/{args.reps} done ({time.perf_counter() - t_start:.0f}s)")
    agree = {}
    for case in CASES:
        fp = {r["method"]: (r["table_md5"], r["deltas_md5"]) for r in main_runs
              if r["case"] == case and r["rep"] == 0}
        agree[case] = {"a=b (table)": fp["a"][0] == fp["b"][0],
                       "c=d (table)": fp["c"][0] == fp["d"][0],
                       "c=d (deltas)": fp["c"][1] == fp["d"][1]}
        for m in METHODS_18:
            if m in fp:
                agree[case][f"c={m} (table, deltas)"] = fp["c"] == fp[m]
    log(f"methods agree: {agree}")
    if not all(v for a in agree.values() for v in a.values()):
        raise RuntimeError(f"methods disagree on what they write: {agree}")
    main = {case: {m: summarize([r for r in main_runs if r["case"] == case and r["method"] == m])
                   for m in methods} for case in CASES}
    for case in CASES:  # ratios of runs made next to each other (same rep) are less noisy
        by = {(r["rep"], r["method"]): r["upsert_s"] for r in main_runs if r["case"] == case}
        main[case]["paired_ratio_median"] = {
            f"{x}/{y}": statistics.median(by[rep, y] / by[rep, x] for rep in range(args.reps))
            for x, y in (("b", "a"), ("c", "d"), ("e", "f"), ("e", "c")) if x in methods}
    knob_runs: list[dict] = []
    knobs: dict = {}
    if not args.no_knobs:
        def shape(cfg):
            return cfg["fillfactor"], cfg["layout"]

        cfgs = {n: TUNED | ch for n, ch in KNOBS.items()}
        # Knobs on the tuned table shape (and the tuned row itself, measured again here) are
        # interleaved rep by rep, so drift of this noisy machine hits them alike; knobs that
        # need another table are run in a block each (a table rebuild per run would be slow).
        same = [n for n, cfg in cfgs.items() if shape(cfg) == shape(TUNED)]
        blocks = [[n] for n in cfgs if n not in same]
        for group in [same, *blocks]:
            for rep in range(args.knob_reps):
                for i, name in enumerate(group):
                    ms = list(METHODS)
                    for m in ms[(rep + i) % 4:] + ms[:(rep + i) % 4]:
                        r = b.run(m, "new10", cfgs[name], explain=(rep == 0))
                        r.update(knob=name, rep=rep)
                        knob_runs.append(r)
            log(f"knobs {group} done ({time.perf_counter() - t_start:.0f}s)")
        for name, cfg in cfgs.items():
            knobs[name] = {"config": cfg, **{m: summarize([r for r in knob_runs
                                                           if r["knob"] == name and r["method"] == m])
                                             for m in METHODS}}
        knobs = {k: knobs[k] for k in KNOBS}
    return {
        "bench": "upsert_merge_vs_on_conflict",
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "server": {"version": info[0], "version_num": info[1], "shared_buffers": info[2],
                   "work_mem": info[3], "shared_preload_libraries": info[4], "fsync": info[5],
                   "synchronous_commit": info[6], "full_page_writes": info[7]},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "psycopg": psycopg.__version__},
        "shape": {"table_rows": INSTANCES * PER_INSTANCE, "instances": INSTANCES,
                  "snapshot_rows": b.rows, "changed_share": 0.5, "reset_share": 0.001,
                  "columns": 9 + len(COUNTERS), "pk": ["instance_id", *KEY]},
        "tuned": TUNED, "methods": methods, "cases": CASES,
        "product_sql_sha256": hashlib.sha256(INGEST_SQL.read_bytes()).hexdigest(),
        "reset_s_median": statistics.median(b.resets), "resets": len(b.resets),
        "methods_agree": agree, "main": main, "knobs": knobs, "runs": main_runs + knob_runs,
    }


def report(res: dict) -> str:
    s = res["server"]
    lines = [(f"PostgreSQL {s['version']}: upsert of a pg_stat_statements snapshot into a "
             f"{res['shape']['table_rows']:,}-row query_stats ({res['shape']['columns']} columns, "
             f"PK {len(res['shape']['pk'])} columns)"),
             (f"medians of {res['main']['all']['a']['n']} runs; tuned setup: fillfactor "
             f"{res['tuned']['fillfactor']}, staged rows sorted by PK by the client, staging "
             f"{'ANALYZEd' if res['tuned']['analyze'] else 'not ANALYZEd'}, work_mem "
             f"{res['tuned']['work_mem'] or s['work_mem']}; time = statement(s) + COMMIT"), ""]
    hdr = f"{'case':<22}{'method':<40}{'rows/s':>10}{'s':>8}{'min-max s':>14}{'HOT %':>7}{'deltas':>8}"
    lines += [hdr, "-" * len(hdr)]
    for case, label in res["cases"].items():
        for m, mlabel in res["methods"].items():
            r = res["main"][case][m]
            hot = f"{100 * r['hot_share']:.0f}" if r["hot_share"] is not None else "-"
            lines.append(f"{label:<22}{'(' + m + ') ' + mlabel:<40}{r['rows_per_s']:>10,.0f}{r['upsert_s']:>8.3f}"
                         f"{r['min_upsert_s']:>7.3f}-{r['max_upsert_s']:<6.3f}{hot:>7}{r['deltas']:>8}")
        mm = res["main"][case]
        pr = mm["paired_ratio_median"]
        lines.append(f"{'':<22}MERGE/ON CONFLICT rows/s ratio: (b)/(a) = "
                     f"{mm['b']['rows_per_s'] / mm['a']['rows_per_s']:.2f}, (c)/(d) = "
                     f"{mm['c']['rows_per_s'] / mm['d']['rows_per_s']:.2f} (medians); per-rep paired: "
                     f"{pr['b/a']:.2f}, {pr['c/d']:.2f}")
        if "e" in mm:
            lines.append(f"{'':<22}PG 18 RETURNING old: (e)/(f) = {mm['e']['rows_per_s'] / mm['f']['rows_per_s']:.2f}, "
                         f"(e)/(c) = {mm['e']['rows_per_s'] / mm['c']['rows_per_s']:.2f}, (f)/(d) = "
                         f"{mm['f']['rows_per_s'] / mm['d']['rows_per_s']:.2f} (medians); per-rep paired "
                         f"(e)/(f) {pr['e/f']:.2f}, (e)/(c) {pr['e/c']:.2f}")
    copies = [r["copy_s"] for r in res["runs"]]
    analyzes = [r["analyze_s"] for r in res["runs"] if r["analyze_s"] > 0.001]
    lines += ["", f"staging: binary COPY into the temp table median {statistics.median(copies):.3f}s "
                  f"({res['shape']['snapshot_rows']['all'] / statistics.median(copies):,.0f} rows/s)"
              + (f"; ANALYZE of staging (when done) median {statistics.median(analyzes):.3f}s"
                 if analyzes else "")]
    lines.append("plans (first run, 90%+10%): " + "; ".join(
        f"({m}) {' / '.join(res['main']['new10'][m]['plan'] or [])}" for m in res["methods"]))
    if res["knobs"]:
        lines += ["", (f"knobs, one change at a time from the tuned setup (90% exist + 10% new, medians of "
                      f"{list(res['knobs'].values())[-1]['a']['n']} runs, measured apart from the main table), rows/s and HOT %:")]
        hdr = f"{'knob':<48}" + "".join(f"{'(' + m + ')':>10}{'HOT':>5}" for m in METHODS) \
            + f"{'b/a':>7}{'c/d':>7}"
        lines += [hdr, "-" * len(hdr)]
        for name, k in res["knobs"].items():
            row = f"{name:<48}"
            for m in METHODS:
                hot = f"{100 * k[m]['hot_share']:.0f}" if k[m]["hot_share"] is not None else "-"
                row += f"{k[m]['rows_per_s']:>10,.0f}{hot:>5}"
            row += f"{k['b']['rows_per_s'] / k['a']['rows_per_s']:>7.2f}{k['c']['rows_per_s'] / k['d']['rows_per_s']:>7.2f}"
            lines.append(row)
        lines += ["", "plans per knob (first run): "]
        for name, k in res["knobs"].items():
            lines.append(f"  {name}: (b) {' / '.join(k['b']['plan'] or [])}; (c) {' / '.join(k['c']['plan'] or [])}")
    lines.append(f"\ntable resets: {res['resets']} (median {res['reset_s_median']:.1f}s each); total {res.get('total_s', '?')}s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
