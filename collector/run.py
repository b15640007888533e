"""`pganalytics collect`: one cycle over every registered target (the daemon loop builds on it)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from . import snapshot, target
from .sink import Sink

log = logging.getLogger("pganalytics.collector")


@dataclass
class CycleResult:
    instance: str
    ok: bool
    query_entries: int = 0
    samples: int = 0
    error: str | None = None


def collect_target(sink: Sink, name: str, conn_ref: str) -> CycleResult:
    try:
        with target.connect(conn_ref) as conn:
            info = target.inspect(conn)
            sink.conn.execute(
                "UPDATE pganalytics.instances SET server_version_num = %s WHERE name = %s",
                (info.server_version_num, name))
            qs = snapshot.query_stats(conn, name, info)
            db = snapshot.database_stats(conn, name)
    except (target.TargetError, psycopg.Error) as exc:
        log.warning("target %s: %s", name, exc)
        return CycleResult(name, False, error=str(exc))
    return CycleResult(name, True, sink.deliver_query_stats(qs), sink.deliver_samples(db))


def collect_once(store_dsn: str, only: list[str] | None = None) -> list[CycleResult]:
    with psycopg.connect(store_dsn, autocommit=True,
                         application_name="pganalytics-collector") as store:
        targets = store.execute(
            "SELECT name, conn_ref FROM pganalytics.instances ORDER BY name").fetchall()
        if only:
            unknown = set(only) - {t[0] for t in targets}
            if unknown:
                raise LookupError(f"not registered: {', '.join(sorted(unknown))}")
            targets = [t for t in targets if t[0] in only]
        sink = Sink(store)
        return [collect_target(sink, name, ref) for name, ref in targets]
