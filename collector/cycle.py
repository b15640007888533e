"""One collection cycle against one target: what to read at this cadence, and what could not
be read and why. Produces batches; delivering them is the sink's job."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from . import plans, snapshot, sources, target
from .host import HostSampler, host_batch
from .batch import SamplesBatch

log = logging.getLogger("pganalytics.collector")


@dataclass
class CycleReport:
    instance: str
    up: bool
    batches: list = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # source -> reason
    server_version_num: int | None = None
    error: str | None = None


def run_cycle(instance: str, conn_ref: str, cadences: frozenset[str] = frozenset({"fast", "slow"}),
              with_query_stats: bool = True, memory: dict | None = None) -> CycleReport:
    """Read every source due at these cadences. A target that is down yields a report with
    up=False and an availability sample, never an exception. `memory` is kept by the caller
    per target between cycles (e.g. which query texts were already sent)."""
    memory = {} if memory is None else memory
    try:
        conn = target.connect(conn_ref)
    except target.TargetError as exc:
        report = CycleReport(instance, False, error=str(exc))
        report.batches.append(_availability(instance, None, False))
        return report
    with conn:
        info = target.inspect(conn)
        now = conn.execute("SELECT statement_timestamp()").fetchone()[0]
        report = CycleReport(instance, True, server_version_num=info.server_version_num)
        report.batches.append(_availability(instance, now, True))
        if with_query_stats and "fast" in cadences:
            try:
                known = memory.setdefault("known_texts", set())
                report.batches.append(snapshot.query_stats(conn, instance, info, known))
            except (target.TargetError, psycopg.Error) as exc:
                report.unavailable["pg_stat_statements"] = _reason(exc)
        if "fast" in cadences:
            sampler = memory.setdefault("host", HostSampler())
            sampler.check(conn)
            report.batches.append(host_batch(sampler, instance, now))
        if "slow" in cadences:
            try:
                report.batches.append(snapshot.settings(conn, instance, now))
            except psycopg.Error as exc:
                report.unavailable["pg_settings"] = _reason(exc)
        for source in sources.ALL:
            if source.cadence not in cadences:
                continue
            try:
                report.batches.append(snapshot.sampled(conn, instance, source, info, now))
            except target.TargetError as exc:
                report.unavailable[source.name] = str(exc)
    if with_query_stats and "slow" in cadences and "pg_stat_statements" not in report.unavailable:
        try:
            batch, skipped = plans.capture_plans(conn_ref, instance,
                                                 totals=memory.setdefault("plan_totals", {}))
            report.batches.append(batch)
            if skipped and not batch.rows:
                report.unavailable["plans"] = f"no query could be planned (first reason: {skipped[0]})"
        except (target.TargetError, psycopg.Error) as exc:
            report.unavailable["plans"] = _reason(exc)
    for name, reason in report.unavailable.items():
        log.info("target %s: %s unavailable: %s", instance, name, reason)
    return report


def _reason(exc: Exception) -> str:
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        msg = exc.diag.message_primary
        if "shared_preload_libraries" in msg:
            return "pg_stat_statements is not loaded: add it to shared_preload_libraries and restart"
        return msg
    return str(exc)


def _availability(instance: str, now, up: bool) -> SamplesBatch:
    from datetime import datetime, timezone

    at = now or datetime.now(timezone.utc)
    return SamplesBatch(instance, "availability", at, [("pg_up", {}, "gauge", 1.0 if up else 0.0)])
