"""Delivering batches to the store: COPY into staging, then one SQL call, one transaction.

Re-delivering a batch is harmless (the store answers "already have it": sample frames are
unique by instance, time and layout, other batches have a row in its snapshot ledger),
which is what makes retrying after a store outage safe. deliver() takes one batch;
deliver_group() takes many inside the caller's transaction with no savepoint each, and puts
every sample of the group through one COPY and one call.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager, nullcontext

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from . import frames, pgss
from .batch import QueryStatsBatch, RowsBatch, SamplesBatch, SeriesLayout


class BatchRefused(Exception):
    """The store cannot take this batch as it is (an unknown instance, a bad source name):
    the batch is set aside, not retried. Bugs of ours (TypeError, ...) are not this."""


def _label_key(labels: dict) -> tuple:
    """Labels as part of the series cache key: the same whatever order the keys came in."""
    return tuple(sorted(labels.items()))


class Sink:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self._instance_ids: dict[str, int] = {}
        self._series: dict[tuple[int, str, tuple], int] = {}
        # Series learned since the last commit: a rollback must forget them (their rows are
        # gone, and an id from the cache is never checked again).
        self._learned: list[tuple[int, str, tuple]] = []
        # Batch numbers of the staged rows, distinct across one store transaction: each ingest
        # call then reads (and deletes) only its own rows' range of the staging index, and a
        # transaction of many batches (the per-batch fallback, savepoints) stays linear.
        self._next_batch_no = 0
        self._loaded: set[int] = set()  # instances whose stored series are all in the cache
        # (instance id, layout) -> the store's layout id: one dict probe a batch.
        self._layouts: dict[tuple[int, SeriesLayout], int] = {}
        self._learned_layouts: list[tuple[int, SeriesLayout]] = []

    # -- transactions whose rollback the caches follow ---------------------------------------
    @contextmanager
    def transaction(self, savepoint: bool = True):
        """A transaction (a savepoint when one is open). With savepoint=False inside an open
        transaction, nothing is opened: an error then dooms the caller's whole transaction.
        On an error, the caches forget what they learned inside."""
        idle = self.conn.info.transaction_status == TransactionStatus.IDLE
        if idle:
            self._learned.clear()  # everything learned before was committed or forgotten
            self._learned_layouts.clear()
            self._next_batch_no = 0
        mark, layouts_mark = len(self._learned), len(self._learned_layouts)
        try:
            if savepoint or idle:
                with self.conn.transaction():
                    yield
            else:
                yield
        except BaseException:
            for key in self._learned[mark:]:
                self._series.pop(key, None)
            del self._learned[mark:]
            for layout_key in self._learned_layouts[layouts_mark:]:
                self._layouts.pop(layout_key, None)
            del self._learned_layouts[layouts_mark:]
            raise

    # -- ids -------------------------------------------------------------------------------
    def instance_id(self, name: str) -> int:
        return self._resolve_instances([name])[name]

    def _resolve_instances(self, names) -> dict[str, int]:
        """Instance ids by name: from the cache, asking the store once for all unknown names."""
        unknown = sorted({n for n in names if n not in self._instance_ids})
        if unknown:
            self._instance_ids.update(self.conn.execute(
                "SELECT name, instance_id FROM pganalytics.instances WHERE name = ANY(%s)",
                (unknown,)).fetchall())
            missing = [n for n in unknown if n not in self._instance_ids]
            if missing:
                raise BatchRefused(f"instance {', '.join(map(repr, missing))} is not registered in "
                                  "the store: add it with `pganalytics targets add`")
        return self._instance_ids

    def note_version(self, name: str, server_version_num: int) -> None:
        self.conn.execute("UPDATE pganalytics.instances SET server_version_num = %s "
                          "WHERE instance_id = %s AND server_version_num IS DISTINCT FROM %s",
                          (server_version_num, self.instance_id(name), server_version_num))

    def _series_ids(self, keyed: list[tuple[int, list]]) -> list[list[int]]:
        """Series ids for the (metric, labels) of each (instance id, samples): from the cache,
        asking the store once for all new ones. The cache key is a sorted label tuple (a hot
        path: thousands per cycle)."""
        by_id: dict[int, tuple] = {}  # a row's samples share one labels dict: sort it once

        def label_key(labels: dict) -> tuple:
            key = by_id.get(id(labels))
            if key is None:
                key = by_id[id(labels)] = _label_key(labels)
            return key
        keys = [[(iid, m, label_key(lab)) for m, lab, _, _ in samples] for iid, samples in keyed]
        self._load_known_series({iid for iid, _ in keyed})
        missing = {}
        for (iid, samples), batch_keys in zip(keyed, keys):
            for key, (m, lab, k, _) in zip(batch_keys, samples):
                if key not in self._series and key not in missing:
                    missing[key] = (iid, m, json.dumps(lab), k)
        if missing:
            iids, metrics, labels, kinds = zip(*missing.values())
            rows = self.conn.execute(
                "SELECT instance_id, metric, labels, series_id "
                "FROM pganalytics.series_ids(%s::int[], %s::text[], %s::jsonb[], %s::text[])",
                (list(iids), list(metrics), list(labels), list(kinds))).fetchall()
            for iid, metric, label_obj, sid in rows:
                key = (iid, metric, _label_key(label_obj))
                if key not in self._series:
                    self._series[key] = sid
                    self._learned.append(key)
        return [[self._series[key] for key in batch_keys] for batch_keys in keys]

    def _load_known_series(self, iids: set[int]) -> None:
        """The first time this connection delivers for an instance, cache all its series in
        one query: after a restart or a store outage, a fleet's first cycles would otherwise
        look up every series one by one in series_ids(). Rows already committed, so a
        rollback of the current transaction leaves them valid."""
        new = sorted(iids - self._loaded)
        if not new:
            return
        for iid, metric, label_obj, sid in self.conn.execute(
                "SELECT instance_id, metric, labels, series_id FROM pganalytics.known_series(%s::int[])",
                (new,)):
            self._series.setdefault((iid, metric, _label_key(label_obj)), sid)
        self._loaded.update(new)

    # -- delivery --------------------------------------------------------------------------
    def deliver(self, batch) -> int:
        """Deliver any batch in its own transaction (a savepoint inside one); returns rows
        stored (0 when it was already delivered)."""
        with self.transaction():
            return self.deliver_group([batch])

    def deliver_group(self, batches: list) -> int:
        """Deliver many batches in the caller's transaction without a savepoint each, in a
        handful of round trips whatever the group's size: every sample in one COPY, every
        pg_stat_statements snapshot in one COPY, then every SQL call sent at once in a
        pipeline (one round trip; psycopg pipeline mode). Round trips, not SQL, are what a
        single writer waits on, and each one also waits for the collector's GIL and the CPU.
        Samples going first changes nothing (each snapshot stands alone); query_stats and row
        batches, whose order matters (deltas, history), keep theirs. Staged rows go into the
        store's own staging tables (the collector may only INSERT into them); each ingest call
        reads back what this transaction staged under its batch numbers. Any error leaves the
        transaction to be rolled back as a whole. Returns rows stored."""
        if any(not isinstance(b, (SamplesBatch, QueryStatsBatch, RowsBatch)) for b in batches):
            raise TypeError("not a batch: " + ", ".join(sorted({type(b).__name__ for b in batches})))
        samples = [b for b in batches if isinstance(b, SamplesBatch) and b.samples]
        stats = [b for b in batches if isinstance(b, QueryStatsBatch)]
        rows = [b for b in batches if isinstance(b, RowsBatch)]
        calls = [self._rows_call(b) for b in rows]  # validates source names first
        iids = self._resolve_instances(b.instance for b in batches)
        with self.transaction(savepoint=False), self.conn.cursor() as cur:
            first = self._next_batch_no
            self._next_batch_no += len(samples) + len(stats)
            samples_call = self._stage_samples(cur, samples, iids, first) if samples else None
            stats_nos = range(first + len(samples), first + len(samples) + len(stats))
            if stats:
                with cur.copy(f"COPY pganalytics.query_stats_stage ({pgss.STAGE_COLUMNS}, batch_no) "
                              "FROM STDIN") as copy:
                    for no, batch in zip(stats_nos, stats):
                        # text COPY: a raw newline only ends a row (data newlines are escaped)
                        copy.write(batch.copy_data.replace(b"\n", b"\t%d\n" % no))
            results = []
            # libpq < 14 has no pipeline mode: the same calls then go one by one.
            with self.conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
                if samples_call:
                    results.append(self.conn.execute(*samples_call))
                for no, batch in zip(stats_nos, stats):
                    text_ids, texts = (list(c) for c in zip(*batch.texts)) if batch.texts else ([], [])
                    results.append(self.conn.execute(
                        "SELECT pganalytics.ingest_query_stats(%s, %s, %s, %s, %s, %s::bigint[], %s::text[])",
                        (no, iids[batch.instance], batch.collected_at, batch.dealloc, batch.stats_reset,
                         text_ids, texts)))
                for rows_batch, call in zip(rows, calls):
                    results.append(self.conn.execute(call, (iids[rows_batch.instance], rows_batch.collected_at,
                                                            Jsonb(rows_batch.rows))))
            return sum(r.fetchone()[0] for r in results)  # type: ignore[index]  # each call returns one row

    def _stage_samples(self, cur, batches: list[SamplesBatch], iids: dict[str, int], first: int) -> tuple:
        """COPY one frame per batch (its instance, time, layout id and values) into the store's
        sample_frames_stage, numbered from `first`; returns the ingest_samples() call (query,
        params) that stores them. A layout seen before costs one dict probe; a new one, a
        series id lookup and one register_layouts() call for all the group's new layouts."""
        keyed = [((iids[b.instance], b.layout()), b) for b in batches]
        new = {key: b for key, b in keyed if key not in self._layouts}
        if new:
            ids = self._series_ids([(key[0], b.samples) for key, b in new.items()])
            rows = cur.execute("SELECT ord, layout_id FROM pganalytics.register_layouts(%s, %s, %s) ORDER BY ord",
                               ([key[0] for key in new], [len(i) for i in ids],
                                [sid for batch_ids in ids for sid in batch_ids])).fetchall()
            for key, (_, layout_id) in zip(new, rows):
                self._layouts[key] = layout_id
                self._learned_layouts.append(key)
        rows = [frames.frame_row(no, key[0], b.collected_at, self._layouts[key], frames.float8_values(b.values()))
                for no, (key, b) in enumerate(keyed, start=first)]
        with cur.copy("COPY pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals) "
                      "FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"".join([frames.SIGNATURE, *rows, frames.TRAILER]))
        dbs = [(no, datid, datname) for no, b in enumerate(batches, start=first)
               for datid, datname in b.databases]
        db_nos, datids, datnames = (list(c) for c in zip(*dbs)) if dbs else ([], [], [])
        return ("SELECT pganalytics.ingest_samples(%s, %s, %s::int[], %s::oid[], %s::text[])",
                (first, len(batches), db_nos, datids, datnames))

    @staticmethod
    def _rows_call(batch: RowsBatch) -> sql.Composed:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,50}", batch.source):
            raise BatchRefused(f"bad source name {batch.source!r}")
        return sql.SQL("SELECT pganalytics.{}(%s, %s, %s)").format(sql.Identifier(f"ingest_{batch.source}"))
