"""The writer: one thread, one store connection, strict order, nothing lost.

Batches from every target arrive on a queue. While the store answers, each is delivered in its
own transaction. When it does not, the batch goes to the on-disk spool, and so does every
later batch until the spool has been replayed - so the store always receives batches in the
order they were collected, and a redelivered batch is harmless (snapshot ledger).
"""
from __future__ import annotations

import logging
import queue
import threading
import time

import psycopg

from .sink import Sink
from .spool import Spool

log = logging.getLogger("pganalytics.collector.delivery")


class Delivery:
    def __init__(self, store_dsn: str, spool: Spool, retry_s: float = 2.0, refresh_s: float = 60.0):
        self.store_dsn = store_dsn
        self.spool = spool
        self.retry_s = retry_s
        self.inbox: queue.Queue = queue.Queue()
        self.delivered = 0
        self.on_connect = None  # callable(Sink): after each (re)connection and every refresh_s
        self.refresh_s = refresh_s
        self._next_refresh = 0.0
        self._sink: Sink | None = None
        self._next_try = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pganalytics-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, batch) -> None:
        self.inbox.put(batch)

    def stop(self, timeout: float = 30) -> None:
        """Deliver or spool everything queued, then stop."""
        self._stop.set()
        self._thread.join(timeout)

    def _connect(self) -> Sink | None:
        if self._sink is not None and not self._sink.conn.closed:
            return self._sink
        if time.monotonic() < self._next_try:
            return None
        try:
            conn = psycopg.connect(self.store_dsn, autocommit=True, connect_timeout=5,
                                   application_name="pganalytics-collector")
        except psycopg.OperationalError as exc:
            self._next_try = time.monotonic() + self.retry_s
            log.warning("store unreachable (%s): spooling", str(exc).strip().splitlines()[-1])
            return None
        self._sink = Sink(conn)
        self._next_refresh = 0.0
        return self._sink

    def _refresh(self) -> None:
        """Run on_connect now and then (e.g. to pick up targets added with `targets add`)."""
        if self.on_connect is None or time.monotonic() < self._next_refresh:
            return
        sink = self._connect()
        if sink is None:
            return
        try:
            self.on_connect(sink)
        except psycopg.OperationalError:
            sink.conn.close()
            self._sink = None
            return
        self._next_refresh = time.monotonic() + self.refresh_s

    def _deliver(self, batch) -> bool:
        sink = self._connect()
        if sink is None:
            return False
        try:
            sink.deliver(batch)
        except psycopg.OperationalError as exc:
            log.warning("store connection lost (%s): spooling", exc)
            sink.conn.close()
            self._sink = None
            self._next_try = time.monotonic() + self.retry_s
            return False
        except (psycopg.Error, LookupError, ValueError) as exc:
            # The store refused this batch itself (bad data, unknown instance): keep it aside
            # for inspection instead of blocking every later batch behind it.
            self.spool.reject(batch, str(exc))
            log.error("batch %s/%s at %s rejected by the store: %s",
                      batch.instance, batch.source, batch.collected_at, exc)
            return True
        self.delivered += 1
        return True

    def _replay(self) -> None:
        while (head := self.spool.oldest()) is not None:
            path, batch = head
            if not self._deliver(batch):
                return
            self.spool.ack(path)

    def _run(self) -> None:
        while True:
            try:
                batch = self.inbox.get(timeout=0.2)
            except queue.Empty:
                batch = None
            self._refresh()
            if len(self.spool):
                self._replay()
            if batch is not None:
                if len(self.spool) or not self._deliver(batch):
                    self.spool.put(batch)
            if self._stop.is_set() and self.inbox.empty():
                break
        if self._sink is not None:
            self._sink.conn.close()
