"""Delivering batches to the store: COPY into staging, then one SQL call, one transaction.

Re-delivering a batch is harmless (the store's snapshot ledger answers "already have it"),
which is what makes retrying after a store outage safe.
"""
from __future__ import annotations

import json
import re

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import pgss
from .batch import QueryStatsBatch, RowsBatch, SamplesBatch


class Sink:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self._instance_ids: dict[str, int] = {}
        self._series: dict[tuple[int, str, tuple], int] = {}
        self._staging_open = False

    def instance_id(self, name: str) -> int:
        if name not in self._instance_ids:
            row = self.conn.execute(
                "SELECT instance_id FROM pganalytics.instances WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise LookupError(f"instance {name!r} is not registered in the store: "
                                  "add it with `pganalytics targets add`")
            self._instance_ids[name] = row[0]
        return self._instance_ids[name]

    def note_version(self, name: str, server_version_num: int) -> None:
        self.conn.execute("UPDATE pganalytics.instances SET server_version_num = %s "
                          "WHERE instance_id = %s AND server_version_num IS DISTINCT FROM %s",
                          (server_version_num, self.instance_id(name), server_version_num))

    def deliver(self, batch) -> int:
        """Deliver any batch; returns rows stored (0 when it was already delivered)."""
        if isinstance(batch, QueryStatsBatch):
            return self.deliver_query_stats(batch)
        if isinstance(batch, SamplesBatch):
            return self.deliver_samples(batch)
        if isinstance(batch, RowsBatch):
            return self.deliver_rows(batch)
        raise TypeError(f"not a batch: {type(batch).__name__}")

    def deliver_query_stats(self, batch: QueryStatsBatch) -> int:
        """Returns the number of entries merged (0 when the batch was already delivered)."""
        iid = self.instance_id(batch.instance)
        with self.conn.transaction(), self.conn.cursor() as cur:
            if not self._staging_open:
                cur.execute("SELECT pganalytics.open_staging()")
                self._staging_open = True
            with cur.copy(f"COPY stage_query_stats ({pgss.STAGE_COLUMNS}) FROM STDIN") as copy:
                copy.write(batch.copy_data)
            if batch.texts:
                ids, texts = zip(*batch.texts)
                cur.execute("UPDATE stage_query_stats s SET query = t.query "
                            "FROM unnest(%s::bigint[], %s::text[]) AS t(queryid, query) "
                            "WHERE s.queryid = t.queryid", (list(ids), list(texts)))
            cur.execute("SELECT pganalytics.ingest_query_stats(%s, %s, %s, %s)",
                        (iid, batch.collected_at, batch.dealloc, batch.stats_reset))
            return cur.fetchone()[0]

    def _series_ids(self, iid: int, samples) -> list[int]:
        """Series ids for (metric, labels) pairs: from the cache, asking the store only for new
        ones. The cache key is a sorted label tuple (a hot path: thousands per cycle)."""
        keys = [(iid, m, tuple(sorted(l.items()))) for m, l, _, _ in samples]
        missing = {}
        for key, (m, l, k, _) in zip(keys, samples):
            if key not in self._series and key not in missing:
                missing[key] = (m, json.dumps(l), k)
        if missing:
            metrics, labels, kinds = zip(*missing.values())
            rows = self.conn.execute(
                "SELECT metric, labels, series_id FROM pganalytics.series_ids(%s, %s, %s::jsonb[], %s)",
                (iid, list(metrics), list(labels), list(kinds))).fetchall()
            for metric, label_obj, sid in rows:
                self._series[(iid, metric, tuple(sorted(label_obj.items())))] = sid
        return [self._series[key] for key in keys]

    def deliver_samples(self, batch: SamplesBatch) -> int:
        if not batch.samples:
            return 0
        iid = self.instance_id(batch.instance)
        with self.conn.transaction(), self.conn.cursor() as cur:
            ids = self._series_ids(iid, batch.samples)
            cur.execute("SELECT pganalytics.begin_snapshot(%s, %s, %s, %s, %s)",
                        (iid, batch.source, batch.collected_at, batch.collected_at, batch.collected_at))
            if not cur.fetchone()[0]:
                return 0
            if batch.databases:
                datids, datnames = zip(*batch.databases)
                cur.execute("SELECT pganalytics.register_databases(%s, %s::oid[], %s)",
                            (iid, list(datids), list(datnames)))
            with cur.copy("COPY pganalytics.samples (instance_id, series_id, ts, value) "
                          "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "int4", "timestamptz", "float8"])
                for sid, (_, _, _, value) in zip(ids, batch.samples):
                    copy.write_row((iid, sid, batch.collected_at, value))
            return len(ids)

    def deliver_rows(self, batch: RowsBatch) -> int:
        """One call to pganalytics.ingest_<source>(); it returns 0 for an already delivered batch."""
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,50}", batch.source):
            raise ValueError(f"bad source name {batch.source!r}")
        iid = self.instance_id(batch.instance)
        call = sql.SQL("SELECT pganalytics.{}(%s, %s, %s)").format(sql.Identifier(f"ingest_{batch.source}"))
        with self.conn.transaction():
            return self.conn.execute(call, (iid, batch.collected_at, Jsonb(batch.rows))).fetchone()[0]
