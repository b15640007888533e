"""Two transactions creating the same new partition at once (two collectors' first batches of
a day): the second waits for the first and then finds it, instead of failing."""
from __future__ import annotations

import threading
import time

import psycopg


def test_concurrent_creators_of_one_partition_both_succeed(store_dsn):
    day = "2026-12-10 00:00+00"
    with psycopg.connect(store_dsn) as first, psycopg.connect(store_dsn) as second:
        first.execute("SELECT pganalytics.ensure_partitions('pganalytics.snapshots', %s, %s)", (day, day))
        errors: list = []

        def create():
            try:
                second.execute("SELECT pganalytics.ensure_partitions('pganalytics.snapshots', %s, %s)", (day, day))
                second.commit()
            except psycopg.Error as exc:
                errors.append(exc)
        worker = threading.Thread(target=create)
        worker.start()
        time.sleep(0.5)  # the second now waits on the first's lock
        assert worker.is_alive()
        first.commit()
        worker.join(10)
        assert not errors, errors
        assert second.execute("SELECT count(*) FROM pg_inherits WHERE inhrelid = "
                              "'pganalytics.snapshots_p20261210'::regclass").fetchone()[0] == 1
