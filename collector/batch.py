"""What one collection cycle hands to the store: self-contained, replayable batches.

Each batch carries (instance, source, collected_at), so delivering it twice is harmless: the
store's snapshot ledger rejects the second copy.
"""
from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter


class SeriesLayout:
    """The series of a samples batch in value order, (metric, labels as sorted JSON, kind) each,
    interned: equal layouts are one object, so the sink maps a batch to its store ids (and its
    encoded id array) with one dict probe instead of a lookup per sample. A source's series
    rarely change between cycles, so consecutive batches share their layout."""
    __slots__ = ("keys", "_hash", "__weakref__")
    _interned: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def __init__(self, keys: tuple):
        self.keys = keys
        self._hash = hash(keys)

    def __hash__(self) -> int:
        return self._hash

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def of(cls, samples: list[tuple[str, dict, str, float]]) -> SeriesLayout:
        by_id: dict[int, str] = {}  # a row's samples share one labels dict: encode it once

        def labels_json(labels: dict) -> str:
            key = by_id.get(id(labels))
            if key is None:
                key = by_id[id(labels)] = json.dumps(labels, sort_keys=True, separators=(",", ":"))
            return key
        keys = tuple((m, labels_json(lab), k) for m, lab, k, _ in samples)
        layout = cls._interned.get(keys)
        if layout is None:
            layout = cls._interned[keys] = cls(keys)
        return layout


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

    def layout(self) -> SeriesLayout:
        """The batch's series layout (computed once; not spooled: a replayed batch recomputes it)."""
        cached = self.__dict__.get("_layout")
        if cached is None or len(cached) != len(self.samples):
            cached = self.__dict__["_layout"] = SeriesLayout.of(self.samples)
        return cached

    def values(self) -> list:
        return list(map(_VALUE, self.samples))


_VALUE = itemgetter(3)


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
