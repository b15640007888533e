"""Connecting to a monitored server the way libpq users expect, with guard rails.

A target's conn_ref is a libpq DSN or URL without a password, or a bare service name from
pg_service.conf; passwords come from ~/.pgpass or PGPASSWORD, never from the store.
Every collector query runs under short statement/lock timeouts so it cannot hold up the
target's own work.
"""
from __future__ import annotations

from dataclasses import dataclass

import psycopg

from . import APPLICATION_NAME

# Timeouts so the collector never holds up the target; DateStyle/TimeZone so COPY text output
# is parsed the same way by the store whatever the target's defaults are.
GUARD_OPTIONS = ("-c statement_timeout=5000 -c lock_timeout=500 "
                 "-c idle_in_transaction_session_timeout=30000 -c DateStyle=ISO -c TimeZone=UTC "
                 "-c extra_float_digits=1")


class TargetError(Exception):
    """A target-side problem, explained in one sentence (e.g. a missing extension)."""


def conninfo(conn_ref: str) -> str:
    ref = conn_ref.strip()
    if "=" in ref or "://" in ref:
        return ref
    return f"service={ref}"


@dataclass(frozen=True)
class TargetInfo:
    server_version_num: int
    pgss_version: str | None
    pgss_columns: frozenset[str]


def connect(conn_ref: str) -> psycopg.Connection:
    try:
        return psycopg.connect(conninfo(conn_ref), connect_timeout=5, autocommit=True,
                               application_name=APPLICATION_NAME, options=GUARD_OPTIONS)
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        raise TargetError(f"cannot connect to target ({lines[-1] if lines else exc!r})") from exc


def inspect(conn: psycopg.Connection) -> TargetInfo:
    """What this target has: pick column sets by what exists, not by server version."""
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()
    columns = frozenset(r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('pg_stat_statements') "
        "AND attnum > 0 AND NOT attisdropped"))
    return TargetInfo(conn.info.server_version, row[0] if row else None, columns)
