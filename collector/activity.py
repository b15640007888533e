"""Wait-event sampling, blocking chains and long idle-in-transaction sessions.

ActivitySampler samples on a persistent, autocommit target connection (the daemon's
TargetSession gives it the target's one connection and replaces it after a reconnection; the
counts survive). The daemon calls tick() every second (one small grouped SELECT on
pg_stat_activity) and, once per collection cycle, drain() and lock_waits():

- drain() -> RowsBatch 'wait_samples': how many times each (datname, queryid, backend_type,
  state, wait_event_type, wait_event) was seen over `ticks` samples since the last drain, so
  average active sessions = samples / ticks. wait_event NULL with state 'active' is CPU.
  Not counted: the sampler itself, the collector's other sessions (application_name
  pganalytics-collector / pganalytics maintain: its delivery to a store on the same server),
  idle sessions and processes idle in their main loop (wait_event_type 'Activity').
- take_chains() -> the lock_waits() snapshot one tick of the cycle took (or None): with
  chains_every_ticks set (the daemon: ticks per cycle), one tick at random among each cycle's
  takes it, so the snapshots fall at random moments instead of at the cycles' fixed rate,
  which aliased a lock held with the cycle's period (seen always or never; its blockers went
  unnamed while the ticks saw the waits). The cycle takes it itself when no tick did.
- lock_waits() -> RowsBatch 'lock_waits': one row per backend waiting on a heavyweight lock
  (kind 'lock_wait': its direct blockers, the root(s) of its chain, how long it has waited)
  and per session idle in a transaction for at least idle_xact_threshold_s
  (kind 'idle_in_transaction'). pg_blocking_pids() is called only for 'Lock' waiters.

queryid is pg_stat_activity.query_id (needs compute_query_id on/auto). It is NULL while a
statement waits for a lock taken during parse analysis (e.g. a plain SELECT on a table
locked by ALTER/LOCK TABLE): PostgreSQL computes it only after parsing.
"""
from __future__ import annotations

import logging
import random
import time
from collections import Counter
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from . import OWN_SESSIONS
from .batch import RowsBatch

log = logging.getLogger("pganalytics.collector")

KEY = ("datname", "queryid", "backend_type", "state", "wait_event_type", "wait_event")

# The collector's own sessions (OWN_SESSIONS: collector/target.py, delivery.py, maintainer.py)
# are left out: counted as CPU they read as a rise in a quiet window (seen in a CI run).
TICK_SQL = """
SELECT datname, query_id, backend_type, state, wait_event_type, wait_event, count(*)::int
FROM pg_catalog.pg_stat_activity
WHERE pid <> pg_catalog.pg_backend_pid()
  AND state IS DISTINCT FROM 'idle'
  AND wait_event_type IS DISTINCT FROM 'Activity'
  AND NOT coalesce(application_name, '') = ANY (%s::text[])
GROUP BY 1, 2, 3, 4, 5, 6"""

# One statement, so every row comes from the same pg_stat_activity snapshot. Returns lock
# waiters, the backends that block them, and sessions idle in a transaction too long.
LOCKS_SQL = """
WITH act AS MATERIALIZED (
    SELECT pid, datname, usename, application_name, backend_type, state, query_id,
           wait_event_type, wait_event, xact_start, state_change, query_start,
           pg_catalog.age(backend_xid) AS xid_age, pg_catalog.age(backend_xmin) AS xmin_age,
           CASE WHEN wait_event_type = 'Lock' THEN pg_catalog.pg_blocking_pids(pid) END AS blocking_pids
    FROM pg_catalog.pg_stat_activity
    WHERE pid <> pg_catalog.pg_backend_pid()
)
SELECT pid, datname, usename, application_name, backend_type, state, query_id AS queryid,
       wait_event_type, wait_event,
       extract(epoch FROM statement_timestamp() - xact_start)::float8 AS xact_age_s,
       extract(epoch FROM statement_timestamp() - state_change)::float8 AS state_age_s,
       extract(epoch FROM statement_timestamp() - query_start)::float8 AS query_age_s,
       xid_age, xmin_age, blocking_pids,
       state LIKE 'idle in transaction%%'
           AND statement_timestamp() - state_change >= make_interval(secs => %s) AS long_idle
FROM act
WHERE blocking_pids IS NOT NULL
   OR (state LIKE 'idle in transaction%%'
       AND statement_timestamp() - state_change >= make_interval(secs => %s))
   OR pid IN (SELECT unnest(blocking_pids) FROM act)"""

# pg_locks.waitstart (14+) is when the wait began; read only when there are waiters, since
# pg_lock_status() visits the whole lock table.
WAITSTART_SQL = """
SELECT pid, extract(epoch FROM statement_timestamp() - min(waitstart))::float8
FROM pg_catalog.pg_locks WHERE NOT granted AND pid = ANY(%s) GROUP BY pid"""

_SESSION = ("pid", "datname", "usename", "application_name", "backend_type", "state",
            "queryid", "wait_event_type", "wait_event", "xact_age_s", "state_age_s",
            "xid_age", "xmin_age")


class ActivitySampler:
    """Samples pg_stat_activity on `conn` (autocommit; not thread-safe). `conn` may be
    replaced between calls, or be None until the first use.

    A tick runs under the connection's guard statement_timeout (target.GUARD_OPTIONS): one
    that cannot finish in time fails and is not counted. lock_waits() runs under
    chains_timeout_ms.
    """

    def __init__(self, conn: psycopg.Connection | None, instance: str, *,
                 idle_xact_threshold_s: float = 60.0, chains_timeout_ms: int = 5000):
        if conn is not None and not conn.autocommit:
            raise ValueError("ActivitySampler needs an autocommit connection: inside one "
                             "transaction pg_stat_activity would not change between ticks")
        self.conn = conn
        self.instance = instance
        self.idle_xact_threshold_s = idle_xact_threshold_s
        self.chains_timeout_ms = int(chains_timeout_ms)
        self._counts: Counter[tuple] = Counter()
        self._ticks = 0
        self._since = time.monotonic()
        self.chains_every_ticks = 0  # 0: ticks take no chains snapshot (take_chains() is None)
        self._rng = random.Random()
        self._chains_tick = 0  # which tick since the last drain takes it (0-based)
        self._chains: RowsBatch | None = None

    @property
    def ticks(self) -> int:
        return self._ticks

    def tick(self) -> int:
        """Take one sample; returns the number of backends counted. Errors propagate and the
        tick is not counted (the caller may reconnect and build a new sampler)."""
        rows = self._conn().execute(TICK_SQL, (list(OWN_SESSIONS),)).fetchall()
        for *key, n in rows:
            self._counts[tuple(key)] += n
        self._ticks += 1
        if self.chains_every_ticks > 0 and self._chains is None and self._ticks - 1 == self._chains_tick:
            try:
                self._chains = self.lock_waits()
            except psycopg.Error as exc:  # the tick still counts; the cycle takes the chains itself
                log.debug("%s: lock chains at a tick failed: %s", self.instance, exc)
        return sum(r[-1] for r in rows)

    def take_chains(self) -> RowsBatch | None:
        """The lock chains a tick took since the last call, if one did (then forgotten)."""
        chains, self._chains = self._chains, None
        return chains

    def drain(self, collected_at: datetime | None = None) -> RowsBatch:
        """The aggregate since the last drain (rows empty when nothing was seen), then reset.

        collected_at defaults to the target's clock."""
        if collected_at is None:
            collected_at = self._target_now()
        now = time.monotonic()
        interval_s, self._since = round(now - self._since, 3), now
        ticks, counts = self._ticks, self._counts
        self._ticks, self._counts = 0, Counter()
        self._chains_tick = self._rng.randrange(self.chains_every_ticks) if self.chains_every_ticks > 1 else 0
        rows = [dict(zip(KEY, key), samples=n, ticks=ticks, interval_s=interval_s)
                for key, n in sorted(counts.items(), key=lambda kv: -kv[1])] if ticks else []
        return RowsBatch(self.instance, "wait_samples", collected_at, rows)

    def lock_waits(self, collected_at: datetime | None = None) -> RowsBatch:
        """Lock waiters with their blocking chains, and long idle-in-transaction sessions."""
        conn = self._conn()
        with conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {self.chains_timeout_ms}")
            if collected_at is None:
                collected_at = self._target_now()
            threshold = float(self.idle_xact_threshold_s)
            with conn.cursor(row_factory=dict_row) as cur:
                backends = cur.execute(LOCKS_SQL, (threshold, threshold)).fetchall()
            waiters = {b["pid"]: b for b in backends if b["blocking_pids"] is not None}
            waited: dict[int, float] = dict(conn.execute(WAITSTART_SQL, (list(waiters),)).fetchall()) if waiters else {}
        return RowsBatch(self.instance, "lock_waits", collected_at,
                         lock_rows(backends, waited) + idle_rows(backends))

    def _conn(self) -> psycopg.Connection:
        if self.conn is None:
            raise RuntimeError("ActivitySampler used before it was given a connection")
        return self.conn

    def _target_now(self) -> datetime:
        row = self._conn().execute("SELECT statement_timestamp()").fetchone()
        assert row is not None  # a SELECT without FROM returns one row
        return row[0]


def chain_roots(pid: int, blockers: dict[int, list[int]]) -> tuple[list[int], int | None]:
    """Roots of pid's blocking chain (blockers that are not themselves waiting on a lock) and
    the shortest distance to one; ([], None) when the chain only loops (a deadlock about to
    be detected) or pid has no blocker."""
    roots: list[int] = []
    depth = None
    seen = {pid}
    level, distance = list(blockers.get(pid, ())), 1
    while level:
        nxt = []
        for p in level:
            if p in seen:
                continue
            seen.add(p)
            if p in blockers:
                nxt.extend(blockers[p])
            else:
                roots.append(p)
                depth = depth or distance
        level, distance = nxt, distance + 1
    return roots, depth


def lock_rows(backends: list[dict], waited: dict[int, float]) -> list[dict]:
    by_pid = {b["pid"]: b for b in backends}
    blockers = {b["pid"]: list(b["blocking_pids"]) for b in backends if b["blocking_pids"] is not None}
    out = []
    for pid in sorted(blockers):
        b = by_pid[pid]
        roots, depth = chain_roots(pid, blockers)
        # The primary root: the known blocker with the oldest transaction. pid 0 stands for
        # a prepared transaction (pg_blocking_pids says so).
        known = [by_pid[r] for r in roots if r in by_pid]
        root = max(known, key=lambda r: r["xact_age_s"] or -1.0, default=None)
        root_pid = root["pid"] if root else (roots[0] if roots else None)
        out.append({
            "kind": "lock_wait", **{k: b[k] for k in _SESSION},
            # waitstart can be NULL for a moment after the wait began
            "lock_wait_s": b["query_age_s"] if waited.get(pid) is None else waited[pid],
            "blocking_pids": blockers[pid],
            "root_blocker_pids": roots,
            "root_blocker_pid": root_pid,
            "root_blocker_state": root["state"] if root else ("prepared transaction" if root_pid == 0 else None),
            "root_blocker_queryid": root["queryid"] if root else None,
            "root_blocker_xact_age_s": root["xact_age_s"] if root else None,
            "chain_depth": depth,
        })
    return out


def idle_rows(backends: list[dict]) -> list[dict]:
    return [{"kind": "idle_in_transaction", **{k: b[k] for k in _SESSION}}
            for b in sorted(backends, key=lambda b: b["pid"]) if b["long_idle"]]
