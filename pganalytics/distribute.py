"""Scale-out on Citus: distribute an installed store across a coordinator and its workers
(`pganalytics install --distributed`, after the Alembic install to head).

Every table of schema pganalytics is placed by what the catalog says about it, so tables of
later revisions are handled without editing this file:

- reference tables (a copy on every node): tables without an `instance_id` column (meta,
  api_tokens, ...) and the one that *assigns* instance ids (its instance_id has an identity
  or a default: `instances`), which everything else points at;
- distributed tables, sharded by instance_id and all colocated with ANCHOR (`series`): every
  other table with an instance_id, so an instance's series, samples, snapshots and query
  statistics live on one node and the ingest functions' joins on instance_id stay there.
  Partitioned tables are distributed as a whole; Citus distributes their future partitions
  (ensure_partitions) as they are created;
- Citus local tables (kept on the coordinator, known to Citus): the UNLOGGED staging tables
  (samples_stage, query_stats_stage). The collector COPYs into them and, in the same
  transaction, calls an ingest function on the coordinator that reads back the rows
  `WHERE stage_xid = pg_current_xact_id()`. On the coordinator that is the transaction's own
  id, as on a single server, and a COPY is a local write, not a 2PC write to every node (a
  reference table) nor a repartitioning by a column the staged rows lack (distributed). Citus
  can use them as the source of INSERT ... SELECT and MERGE into distributed tables (it plans
  a plain, non-Citus table as a MERGE source not at all).

Order: reference tables first (referenced ones before their referencers), then the anchor,
then the other distributed tables (referenced ones first), then the local tables; all of it
in one transaction, with Citus' automatic conversion of referencing tables into Citus local
tables turned off (a converted table with an identity column could not be distributed any
more). Idempotent: a table already placed as wanted is left alone, a distributed one that is
not colocated with the anchor is moved into its colocation group, and a placement that
contradicts the plan is refused with the command that would undo it.

The store's owner (a NOLOGIN role: it owns every object and runs every SECURITY DEFINER
function) must log in to the workers, because Citus runs the shards' statements as the
current user over connections of its own: its role is given LOGIN on the workers only (the
coordinator keeps NOLOGIN). Restrict it in the workers' pg_hba.conf to the coordinator; run
this again after adding a worker.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import store

SCHEMA = "pganalytics"
DIST_COLUMN = "instance_id"
# The colocation group's first table (when there is one; else the first distributed table).
ANCHOR = "series"

REFERENCE, DISTRIBUTED, LOCAL = "reference", "distributed", "local"


class DistributeError(store.StoreError):
    """The store cannot be distributed as it is (str(): one sentence saying what to do)."""


@dataclass(frozen=True)
class Table:
    name: str  # unqualified: every table is in SCHEMA
    kind: str  # REFERENCE, DISTRIBUTED or LOCAL
    why: str  # one phrase: what in the catalog put it there

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.name}"


@dataclass
class Plan:
    """Tables in the order they are placed."""
    reference: list[Table]
    distributed: list[Table]  # the anchor first
    local: list[Table]

    @property
    def anchor(self) -> Table | None:
        return self.distributed[0] if self.distributed else None

    @property
    def tables(self) -> list[Table]:
        return [*self.reference, *self.distributed, *self.local]


@dataclass
class Result:
    plan: Plan
    seconds: float
    workers: int
    citus_version: str
    done: list[tuple[str, str]] = field(default_factory=list)  # (table, what was done)
    owner_login_on: list[str] = field(default_factory=list)  # workers where the owner got LOGIN

    def summary(self) -> str:
        p = self.plan
        anchor = p.anchor.name if p.anchor else "-"
        what = (f"{len(p.reference)} reference, {len(p.distributed)} distributed by {DIST_COLUMN} "
                f"(colocated with {anchor}), {len(p.local)} Citus local")
        if not self.done and not self.owner_login_on:
            return f"store already distributed ({what}) on {self.workers} workers; checked in {self.seconds:.2f} s"
        return (f"store distributed in {self.seconds:.2f} s: {what} tables on {self.workers} workers "
                f"(Citus {self.citus_version}); {len(self.done)} tables placed now")


# --- the catalog --------------------------------------------------------------------------

def check_citus(conn: psycopg.Connection) -> str:
    """The citus extension's version in this database; DistributeError when it is not there."""
    row = conn.execute(
        "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'), "
        "       EXISTS (SELECT FROM pg_catalog.pg_available_extensions WHERE name = 'citus'), "
        "       current_setting('shared_preload_libraries')").fetchone()
    assert row is not None
    version, available, preload = row
    if version:
        return version
    if not available:
        raise DistributeError(
            "--distributed needs Citus, and this server has no citus extension: install Citus "
            "on every node (scripts/citus-build.sh builds it for a local test cluster), list it "
            "first in shared_preload_libraries, CREATE EXTENSION citus in the store database on "
            "each node, and add the workers with citus_add_node()")
    if "citus" not in [s.strip() for s in preload.split(",")]:
        raise DistributeError(
            "--distributed needs the citus extension, which this server has but does not load: "
            "add citus (first) to shared_preload_libraries, restart, then CREATE EXTENSION citus "
            "in the store database on each node")
    raise DistributeError(
        "--distributed needs the citus extension in the store database, and it is not created "
        "there: run CREATE EXTENSION citus in it (on the coordinator and every worker), then add "
        "the workers with citus_add_node()")


def _tables(conn: psycopg.Connection) -> list[tuple[str, bool, bool, bool]]:
    """(name, unlogged, has instance_id, instance_id assigned here) of every table of the
    schema that is not a partition (they follow their parent) nor a Citus shard."""
    return [(name, unlogged, has_iid, assigns) for name, unlogged, has_iid, assigns in conn.execute(
        """
        SELECT c.relname, c.relpersistence = 'u', a.attname IS NOT NULL,
               coalesce(a.attidentity <> '' OR a.atthasdef, false)
        FROM pg_catalog.pg_class c
        LEFT JOIN pg_catalog.pg_attribute a
          ON a.attrelid = c.oid AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND NOT pg_catalog.relation_is_a_known_shard(c.oid)
        ORDER BY c.relname
        """, (DIST_COLUMN, SCHEMA))]


def _foreign_keys(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(referencing, referenced) table names of the schema's foreign keys."""
    return [(a, b) for a, b in conn.execute(
        """
        SELECT DISTINCT r.relname, f.relname
        FROM pg_catalog.pg_constraint k
        JOIN pg_catalog.pg_class r ON r.oid = k.conrelid
        JOIN pg_catalog.pg_class f ON f.oid = k.confrelid
        WHERE k.contype = 'f' AND r.relnamespace = %s::regnamespace AND f.relnamespace = %s::regnamespace
          AND NOT r.relispartition AND r.oid <> f.oid
        """, (SCHEMA, SCHEMA))]


def _dependency_order(names: list[str], fks: list[tuple[str, str]]) -> list[str]:
    """`names` with every referenced table before its referencers (by name otherwise)."""
    wanted = set(names)
    needs = {n: sorted({b for a, b in fks if a == n and b in wanted}) for n in names}
    out: list[str] = []

    def visit(n: str, chain: tuple[str, ...]) -> None:
        if n in out:
            return
        if n in chain:
            raise DistributeError(f"foreign keys form a cycle ({' -> '.join((*chain, n))}): "
                                  "Citus cannot place such tables one by one")
        for m in needs[n]:
            visit(m, (*chain, n))
        out.append(n)

    for n in sorted(names):
        visit(n, ())
    return out


def _problems(conn: psycopg.Connection, kinds: dict[str, Table]) -> list[str]:
    """What Citus would refuse in this placement, all at once (it stops at the first): unique
    keys of distributed tables without the distribution column, and foreign keys it cannot
    enforce (from a reference table to a non-reference one, between distributed tables not
    on instance_id = instance_id, between a coordinator-local table and a distributed one)."""
    out = []
    for table, index, columns in conn.execute(
            """
            SELECT c.relname, i.relname, pg_catalog.pg_get_indexdef(x.indexrelid)
            FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
            JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
            WHERE c.relnamespace = %s::regnamespace AND NOT c.relispartition AND x.indisunique
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                              WHERE a.attrelid = c.oid AND a.attname = %s AND a.attnum = ANY (x.indkey))
            ORDER BY 1, 2
            """, (SCHEMA, DIST_COLUMN)):
        if table in kinds and kinds[table].kind == DISTRIBUTED:
            out.append(f"{SCHEMA}.{table}'s unique index {index} does not include {DIST_COLUMN} "
                       f"({columns.split(' USING ', 1)[-1]}): add it to the key")
    for table, name, target, pairs in conn.execute(
            """
            SELECT r.relname, k.conname, f.relname,
                   array(SELECT pg_catalog.format('%%s=%%s', ra.attname, fa.attname)
                         FROM unnest(k.conkey, k.confkey) AS u(rc, fc)
                         JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.conrelid AND ra.attnum = u.rc
                         JOIN pg_catalog.pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = u.fc)
            FROM pg_catalog.pg_constraint k
            JOIN pg_catalog.pg_class r ON r.oid = k.conrelid
            JOIN pg_catalog.pg_class f ON f.oid = k.confrelid
            WHERE k.contype = 'f' AND r.relnamespace = %s::regnamespace AND NOT r.relispartition
            ORDER BY 1, 2
            """, (SCHEMA,)):
        a, b = kinds.get(table), kinds.get(target)
        if a is None or b is None:
            out.append(f"foreign key {name} of {SCHEMA}.{table} references {target}, outside the store")
        elif a.kind == REFERENCE and b.kind != REFERENCE:
            out.append(f"{SCHEMA}.{table} would be a reference table ({a.why}) but its foreign key {name} "
                       f"references {SCHEMA}.{target}, which would be {b.kind}: give the table an "
                       f"{DIST_COLUMN} or drop the key")
        elif a.kind == DISTRIBUTED and b.kind == DISTRIBUTED and f"{DIST_COLUMN}={DIST_COLUMN}" not in pairs:
            out.append(f"foreign key {name} of {SCHEMA}.{table} to {SCHEMA}.{target} does not pair "
                       f"{DIST_COLUMN} with {DIST_COLUMN}: include it in the key")
        elif LOCAL in (a.kind, b.kind) and a.kind != b.kind and REFERENCE not in (a.kind, b.kind):
            out.append(f"foreign key {name} between {SCHEMA}.{table} ({a.kind}) and {SCHEMA}.{target} "
                       f"({b.kind}): Citus local tables may reference only reference or local tables")
    return out


def plan(conn: psycopg.Connection) -> Plan:
    """Where each table of the store goes (see the module's docstring), from the catalog."""
    tables = _tables(conn)
    if not tables:
        raise DistributeError(f"there is no store in this database (no tables in schema {SCHEMA}): "
                              "install it first (pganalytics install)")
    kinds: dict[str, Table] = {}
    for name, unlogged, has_iid, assigns_iid in tables:
        if unlogged:
            kinds[name] = Table(name, LOCAL, "UNLOGGED staging, read back by its own transaction")
        elif not has_iid:
            kinds[name] = Table(name, REFERENCE, f"no {DIST_COLUMN} column")
        elif assigns_iid:
            kinds[name] = Table(name, REFERENCE, f"assigns {DIST_COLUMN} (identity or default)")
        else:
            kinds[name] = Table(name, DISTRIBUTED, f"has {DIST_COLUMN}")
    fks = _foreign_keys(conn)
    problems = _problems(conn, kinds)
    if problems:
        raise DistributeError("the store cannot be distributed as it is: " + "; ".join(problems))
    of = {k: [n for n, t in kinds.items() if t.kind == k] for k in (REFERENCE, DISTRIBUTED, LOCAL)}
    distributed = _dependency_order(of[DISTRIBUTED], fks)
    # The anchor first (the colocation group's first table) when it references no other
    # distributed table; else the first in dependency order is.
    if ANCHOR in distributed and not any(a == ANCHOR and b in distributed for a, b in fks):
        distributed.remove(ANCHOR)
        distributed.insert(0, ANCHOR)
    return Plan(reference=[kinds[n] for n in _dependency_order(of[REFERENCE], fks)],
                distributed=[kinds[n] for n in distributed],
                local=[kinds[n] for n in _dependency_order(of[LOCAL], fks)])


def placements(conn: psycopg.Connection) -> dict[str, tuple[str, str | None, int]]:
    """Citus' placement of each table of the schema: name -> (kind, distribution column,
    colocation id)."""
    out = {}
    for name, method, repmodel, column, colocation in conn.execute(
            """
            SELECT c.relname, p.partmethod, p.repmodel,
                   CASE WHEN p.partmethod = 'h' THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END,
                   p.colocationid
            FROM pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
            WHERE c.relnamespace = %s::regnamespace AND NOT c.relispartition
            """, (SCHEMA,)):
        kind = (DISTRIBUTED if method == "h" else REFERENCE if repmodel == "t" else LOCAL
                if method == "n" else f"distributed by {method!r}")
        out[name] = (kind, column, colocation)
    return out


# --- doing it -----------------------------------------------------------------------------

def _place(conn: psycopg.Connection, t: Table, anchor: Table | None,
           current: dict[str, tuple[str, str | None, int]]) -> str | None:
    """Place one table; returns what was done, None when it already was as wanted."""
    ident = sql.Literal(t.qualified)
    now = current.get(t.name)
    kind = now[0] if now else None
    if t.kind == REFERENCE:
        if kind == REFERENCE:
            return None
        if kind not in (None, LOCAL):
            raise DistributeError(f"{t.qualified} is already {kind} but should be a reference table "
                                  f"({t.why}): SELECT undistribute_table('{t.qualified}') first")
        conn.execute(sql.SQL("SELECT create_reference_table({})").format(ident))
        return "reference table"
    if t.kind == LOCAL:
        if kind == LOCAL:
            return None
        if kind is not None:
            raise DistributeError(f"{t.qualified} is already {kind} but should stay on the coordinator "
                                  f"({t.why}): SELECT undistribute_table('{t.qualified}') first")
        conn.execute(sql.SQL("SELECT citus_add_local_table_to_metadata({})").format(ident))
        return "Citus local table"
    assert anchor is not None
    anchor_ident = sql.Literal(anchor.qualified)
    if kind == DISTRIBUTED:
        assert now is not None
        if now[1] != DIST_COLUMN:
            raise DistributeError(
                f"{t.qualified} is distributed by {now[1]}, not {DIST_COLUMN}: SELECT "
                f"alter_distributed_table('{t.qualified}', distribution_column := '{DIST_COLUMN}') first")
        if t.name == anchor.name or now[2] == current[anchor.name][2]:
            return None
        conn.execute(sql.SQL("SELECT update_distributed_table_colocation({}, colocate_with => {})")
                     .format(ident, anchor_ident))
        return f"moved into {anchor.name}'s colocation group"
    if kind not in (None, LOCAL):
        raise DistributeError(f"{t.qualified} is already {kind} but should be distributed by "
                              f"{DIST_COLUMN}: SELECT undistribute_table('{t.qualified}') first")
    colocate = sql.Literal("default") if t.name == anchor.name else anchor_ident
    conn.execute(sql.SQL("SELECT create_distributed_table({}, {}, colocate_with => {})")
                 .format(ident, sql.Literal(DIST_COLUMN), colocate))
    return f"distributed by {DIST_COLUMN}" + ("" if t.name == anchor.name else f", colocated with {anchor.name}")


def _owner_login_on_workers(conn: psycopg.Connection) -> list[str]:
    """Give the store's owner LOGIN on the workers where it has none (not on the coordinator);
    returns those workers. Nothing when the owner is a superuser or may log in anyway."""
    row = conn.execute(
        "SELECT r.rolname, r.rolsuper OR r.rolcanlogin FROM pg_catalog.pg_namespace n "
        "JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner WHERE n.nspname = %s", (SCHEMA,)).fetchone()
    if row is None or row[1]:
        return []
    owner = row[0]
    check = sql.SQL("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = {}").format(
        sql.Literal(owner)).as_string(conn)
    # Only here: a worker would otherwise pass the change on to the other nodes, the coordinator too.
    alter = sql.SQL("SET citus.enable_alter_role_propagation = off; ALTER ROLE {} LOGIN").format(
        sql.Identifier(owner)).as_string(conn)
    changed = []
    for host, port, ok, result in conn.execute("SELECT * FROM run_command_on_workers(%s)", (check,)).fetchall():
        if ok and result == "t":
            continue
        if not ok or result != "f":
            raise DistributeError(f"cannot read role {owner} on worker {host}:{port} ({result})")
        done = conn.execute("SELECT * FROM run_command_on_workers(%s) WHERE nodename = %s AND nodeport = %s",
                            (alter, host, port)).fetchone()
        if done is None or not done[2]:
            raise DistributeError(f"cannot give role {owner} LOGIN on worker {host}:{port} "
                                  f"({done[3] if done else 'no answer'})")
        changed.append(f"{host}:{port}")
    return changed


def distribute(dsn: str) -> Result:
    """Distribute the store of `dsn` (the coordinator's database); safe to run again."""
    t0 = time.monotonic()
    with store.connect(dsn) as conn:
        version = check_citus(conn)
        conn.execute("SET client_min_messages = warning")  # Citus' NOTICEs on every table
        workers = conn.execute("SELECT count(*) FROM citus_get_active_worker_nodes()").fetchone()[0]  # type: ignore[index]  # one row
        if workers == 0:
            raise DistributeError("the coordinator has no active workers: add them first with "
                                  "SELECT citus_add_node('host', port) (and citus_set_coordinator_host())")
        placing: Table | None = None
        try:
            with conn.transaction():
                # One installer or distributor at a time (as migrations/env.py).
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('pganalytics.install'))")
                # Referencing tables stay plain until distributed themselves, instead of being
                # turned into Citus local tables when their referenced table becomes a
                # reference table (a converted table with an identity column is stuck there).
                conn.execute("SET LOCAL citus.enable_local_reference_table_foreign_keys = off")
                the_plan = plan(conn)
                current = placements(conn)
                done = []
                for placing in the_plan.tables:
                    what = _place(conn, placing, the_plan.anchor, current)
                    if what:
                        done.append((placing.qualified, what))
                        current = placements(conn)
                placing = None
            owner_login = _owner_login_on_workers(conn)
        except psycopg.Error as exc:
            where = f" at {placing.qualified} (to be {placing.kind})" if placing else ""
            raise DistributeError(f"distributing the store failed{where} and was rolled back: "
                                  f"{exc.diag.message_primary or exc}") from exc
    return Result(the_plan, time.monotonic() - t0, workers, version, done, owner_login)
