"""What one collection cycle hands to the store: self-contained, replayable batches.

Each batch carries (instance, source, collected_at), so delivering it twice is harmless: the
store's snapshot ledger rejects the second copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class QueryStatsBatch:
    instance: str
    collected_at: datetime
    copy_data: bytes  # COPY (text format) of pganalytics.query_stats_stage rows
    rows: int
    dealloc: int | None = None
    stats_reset: datetime | None = None
    texts: list[tuple[int, str]] = field(default_factory=list)  # (queryid, query) not sent before
    source: str = field(default="query_stats", init=False)


@dataclass
class SamplesBatch:
    instance: str
    source: str
    collected_at: datetime
    samples: list[tuple[str, dict, str, float]]  # (metric, labels, kind, value) at collected_at
    databases: list[tuple[int, str]] = field(default_factory=list)  # (datid, datname) seen


@dataclass
class RowsBatch:
    """Low-volume event-like rows (wait-event counts, lock chains, plans, settings changes).

    Delivered as one call `pganalytics.ingest_<source>(instance_id, collected_at, rows jsonb)`
    that registers the batch in the snapshot ledger and stores the rows: adding such a source
    needs one SQL function and no sink change.
    """
    instance: str
    source: str
    collected_at: datetime
    rows: list[dict]
