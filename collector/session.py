"""A target's one persistent connection, shared by its collection cycles and wait-event ticks.

Starting a backend is most of what a collection cycle costs the target (fork, catalog caches,
authentication), so the daemon keeps one connection per target for its whole life, the way
a connection pooler would, and uses it under a lock: a cycle and a tick never interleave on it.
The wait-event counts live in the session's ActivitySampler and survive reconnections.

A kept connection can go stale without notice (the target restarted, a proxy dropped it):
users call `connection()` for a live one and `discard()` when a statement fails with a
connection error; a cycle then retries once on a fresh connection (cycle.run_cycle).
"""
from __future__ import annotations

import threading

import psycopg

from . import target
from .activity import ActivitySampler


class TargetSession:
    def __init__(self, instance: str, conn_ref: str):
        self.instance = instance
        self.conn_ref = conn_ref
        self.lock = threading.Lock()
        self.sampler = ActivitySampler(None, instance)
        self._conn: psycopg.Connection | None = None

    def connection(self) -> tuple[psycopg.Connection, bool]:
        """A live connection and whether it was opened just now; TargetError when the target
        cannot be reached. The caller holds self.lock."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn, False
        self.discard()
        conn = target.connect(self.conn_ref)
        hide_own_statements(conn)
        self._conn = self.sampler.conn = conn
        return conn, True

    def discard(self) -> None:
        """Close the connection (after an error, or at stop); the next use reconnects."""
        conn, self._conn = self._conn, None
        self.sampler.conn = None
        if conn is not None:
            conn.close()

    def tick(self) -> bool:
        """One wait-event sample, unless a cycle is using the connection right now (then the
        tick is skipped, not counted, so samples/ticks stays exact). False when skipped or
        failed; a failed tick discards the connection."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            self.connection()
            self.sampler.tick()
            return True
        except (target.TargetError, psycopg.Error):
            self.discard()
            return False
        finally:
            self.lock.release()


def hide_own_statements(conn: psycopg.Connection) -> None:
    """Keep the collector's statements out of the target's pg_stat_statements where the role
    may (superuser, or GRANT SET ON PARAMETER pg_stat_statements.track): they would otherwise
    take ~20 entries of every monitored database and show up in its top queries."""
    try:
        conn.execute("SET pg_stat_statements.track = none")
    except psycopg.errors.InsufficientPrivilege:
        pass
