"""Calls pganalytics.maintain() on a schedule, from its own thread and store connection.

maintain() rolls the store's new minutes up, folds them into per-series state and drops
partitions past retention (sql/store/maintain.sql). Every daemon runs this by default; the
store lets one call run at a time and the others return at once, so N sharded daemons (or
pg_cron as well) are harmless. A separate connection: a maintain() taking seconds must not
hold up deliveries. Set [collector] maintain_interval_s = 0 when pg_cron runs it instead.
"""
from __future__ import annotations

import logging
import threading

import psycopg

from . import MAINTAIN_APPLICATION_NAME

log = logging.getLogger(__name__)


class Maintainer:
    def __init__(self, dsn: str, interval_s: float):
        self.dsn, self.interval_s = dsn, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.last_summary: dict | None = None

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._loop, name="pganalytics-maintain", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run_once(self, conn: psycopg.Connection) -> dict:
        summary = conn.execute("SELECT pganalytics.maintain()").fetchone()[0]  # type: ignore[index]
        self.runs += 1
        self.last_summary = summary
        if "skipped" in summary:
            log.debug("maintain(): %s", summary["skipped"])
        elif summary.get("instance_minutes") or summary.get("dropped"):
            log.info("maintain(): %d instance-minutes rolled up, %d late, %d partitions dropped in %ss",
                     summary["instance_minutes"], summary["late_minutes"], len(summary["dropped"]),
                     summary["seconds"])
        return summary

    def _loop(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            wait = self.interval_s
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, application_name=MAINTAIN_APPLICATION_NAME)
                if self.run_once(conn).get("behind"):
                    wait = 0  # a backlog: the next slice at once
            except psycopg.Error as exc:
                # The store down or restarting: deliveries spool meanwhile; try again next time.
                log.warning("maintain() failed, retrying in %ss: %s", self.interval_s,
                            getattr(exc.diag, "message_primary", None) or exc)
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(wait)
        if conn is not None:
            conn.close()
