"""`pganalytics collect --once`: one full cycle (every cadence) over every registered target."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from . import APPLICATION_NAME
from .config import CollectorConfig
from .cycle import run_cycle
from .pgss import NO_FILTER
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


def collect_once(store_dsn: str, only: list[str] | None = None, config: CollectorConfig | None = None,
                 memories: dict | None = None) -> list[CycleResult]:
    """One cycle of every registered target (or of `only`). `config` gives each target's
    exclusions (its [[targets]] entry, else the [collector] default); `memories` (name -> dict),
    kept by a caller that repeats this (the demo), carries between cycles what a daemon
    remembers per target: texts already sent, plan ranking, what cannot be planned."""
    with psycopg.connect(store_dsn, autocommit=True,
                         application_name=APPLICATION_NAME) as store:
        targets = store.execute(
            "SELECT name, conn_ref FROM pganalytics.instances ORDER BY name").fetchall()
        if only:
            unknown = set(only) - {t[0] for t in targets}
            if unknown:
                raise LookupError(f"not registered: {', '.join(sorted(unknown))}")
            targets = [t for t in targets if t[0] in only]
        sink = Sink(store)
        return [_cycle(sink, name, ref, None if memories is None else memories.setdefault(name, {}),
                       config.filter_for(name) if config else NO_FILTER)
                for name, ref in targets]


def _cycle(sink: Sink, name: str, ref: str, memory: dict | None, query_filter) -> CycleResult:
    report = run_cycle(name, ref, memory=memory, query_filter=query_filter)
    try:
        return deliver_report(sink, report)
    except Exception:
        if memory is not None:  # the texts of this cycle were not stored: send them again
            memory.pop("known_texts", None)
        raise
