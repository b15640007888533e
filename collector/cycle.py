"""One collection cycle against one target: what to read at this cadence, and what could not
be read and why. Produces batches; delivering them is the sink's job."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from . import pgss, plans, snapshot, sources, target
from .activity import ActivitySampler
from .batch import QueryStatsBatch, SamplesBatch
from .host import HostSampler, host_batch
from .index_advice import IndexAdvisor
from .session import TargetSession

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
              with_query_stats: bool = True, memory: dict | None = None,
              session: TargetSession | None = None,
              query_filter: pgss.QueryFilter = pgss.NO_FILTER) -> CycleReport:
    """Read every source due at these cadences. A target that is down yields a report with
    up=False and an availability sample, never an exception. `memory` is kept by the caller
    per target between cycles (e.g. which query texts were already sent).

    With a `session` (the daemon's persistent connection, whose lock the caller holds), the
    cycle runs on it and also drains its wait-event sampler; a kept connection found dead is
    replaced once. Without one, the cycle connects and disconnects (`collect --once`).
    `query_filter`'s databases and roles stay out of the query statistics and plans."""
    memory = {} if memory is None else memory
    own = session is None
    if own:
        session = TargetSession(instance, conn_ref)
    assert session is not None  # given, or made just above
    try:
        while True:
            try:
                conn, fresh = session.connection()
            except target.TargetError as exc:
                return _down(instance, str(exc))
            try:
                report = _collect(conn, conn_ref, instance, cadences, with_query_stats, memory,
                                  None if own else session.sampler, query_filter)
            except psycopg.OperationalError as exc:
                session.discard()
                if fresh:  # not a stale kept connection: the target went away mid-cycle
                    return _down(instance, f"lost the connection to the target ({_reason(exc)})")
                continue
            for name, reason in report.unavailable.items():
                log.info("target %s: %s unavailable: %s", instance, name, reason)
            return report
    finally:
        if own:
            session.discard()


def _collect(conn: psycopg.Connection, conn_ref: str, instance: str, cadences: frozenset[str],
             with_query_stats: bool, memory: dict, sampler: ActivitySampler | None,
             query_filter: pgss.QueryFilter) -> CycleReport:
    info = target.inspect(conn)
    row = conn.execute("SELECT statement_timestamp()").fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    now = row[0]
    report = CycleReport(instance, True, server_version_num=info.server_version_num)
    report.batches.append(_availability(instance, now, True))
    known = memory.setdefault("known_texts", set())
    if with_query_stats and "fast" in cadences:
        with _unavailable_as(report, "pg_stat_statements"):
            report.batches.append(snapshot.query_stats(conn, instance, info, known, query_filter))
    if "fast" in cadences:
        host = memory.setdefault("host", HostSampler())
        host.check(conn)
        report.batches.append(host_batch(host, instance, now))
        if sampler is not None:  # wait-event counts since the last cycle, lock chains
            waits = sampler.drain(now)
            report.batches += [waits] if waits.rows else []
            with _unavailable_as(report, "lock_waits"):
                # as a tick took them, at a random moment of the interval; else now
                chains = sampler.take_chains() or sampler.lock_waits(now)
                report.batches += [chains] if chains.rows else []
    if "slow" in cadences:
        with _unavailable_as(report, "pg_settings"):
            report.batches.append(snapshot.settings(conn, instance, now))
        with _unavailable_as(report, "index_definitions"):
            report.batches.append(snapshot.index_definitions(conn, instance, now))
    for source in sources.ALL:
        if source.cadence in cadences:
            with _unavailable_as(report, source.name):
                report.batches.append(snapshot.sampled(conn, instance, source, info, now))
    if with_query_stats and "slow" in cadences and "pg_stat_statements" not in report.unavailable:
        with _unavailable_as(report, "plans"):
            advisor = memory.setdefault("index_advice", IndexAdvisor())
            batch, skipped = plans.capture_plans(conn_ref, instance, conn=conn, query_filter=query_filter,
                                                 memory=memory.setdefault("plans", plans.PlanMemory()),
                                                 advisor=advisor)
            report.batches.append(batch)
            if advice := advisor.take(instance, batch.collected_at):
                report.batches.append(advice)
            if skipped and not batch.rows:
                report.unavailable["plans"] = f"no query could be planned (first reason: {skipped[0]})"
    # Only now, with the cycle complete: texts of a failed cycle are sent again next time.
    for batch in report.batches:
        if isinstance(batch, QueryStatsBatch):
            known.update(q for q, _ in batch.texts)
    return report


@contextmanager
def _unavailable_as(report: CycleReport, name: str):
    """Record why `name` could not be read and go on with the cycle; a lost connection
    (also when a source wrapped it in a TargetError) ends the cycle instead."""
    try:
        yield
    except psycopg.OperationalError:
        raise
    except target.TargetError as exc:
        if isinstance(exc.__cause__, psycopg.OperationalError):
            raise exc.__cause__ from None  # the lost connection itself, for the retry above
        report.unavailable[name] = _reason(exc)
    except psycopg.Error as exc:
        report.unavailable[name] = _reason(exc)


def _down(instance: str, error: str) -> CycleReport:
    report = CycleReport(instance, False, error=error)
    report.batches.append(_availability(instance, None, False))
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
