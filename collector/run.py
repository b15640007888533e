"""`pganalytics collect --once`: one full cycle (every cadence) over every registered target."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from .cycle import run_cycle
from .sink import Sink

log = logging.getLogger("pganalytics.collector")


@dataclass
class CycleResult:
    instance: str
    ok: bool
    query_entries: int = 0
    samples: int = 0
    error: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


def deliver_report(sink: Sink, report) -> CycleResult:
    result = CycleResult(report.instance, report.up, error=report.error,
                         unavailable=report.unavailable)
    if report.server_version_num:
        sink.note_version(report.instance, report.server_version_num)
    for batch in report.batches:
        stored = sink.deliver(batch)
        if batch.source == "query_stats":
            result.query_entries += stored
        elif batch.source != "availability":
            result.samples += stored
    return result


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
        return [deliver_report(sink, run_cycle(name, ref)) for name, ref in targets]
