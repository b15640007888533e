"""A full disk is reported, never silent: the spool on a real, tiny filesystem (tmpfs) fills
while the store is away, and delivery stops loudly, saying why, instead of dropping batches."""
from __future__ import annotations

import logging
import os
import subprocess
import time
from datetime import datetime, timezone

import pytest

from pganalytics.collector.batch import SamplesBatch
from pganalytics.collector.delivery import Delivery
from pganalytics.collector.spool import Spool


@pytest.fixture
def tiny_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_spool_disk_stops_delivery_loudly(tiny_fs, caplog):
    # the spool's own bound is far above the disk: the disk fills first
    spool = Spool(tiny_fs / "spool", max_bytes=1 << 30)
    delivery = Delivery("host=127.0.0.1 port=1 dbname=none connect_timeout=1", spool, retry_s=60)
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    with caplog.at_level(logging.ERROR, logger="pganalytics.collector.delivery"):
        delivery.start()

        def batch(i):
            return SamplesBatch("d1", "host", at, [(f"m{k}", {"i": str(i)}, "gauge", 1.0) for k in range(50)])
        delivery.put([batch(0)])
        deadline = time.monotonic() + 20
        while not len(spool) and time.monotonic() < deadline:  # the store is away: spooled
            time.sleep(0.05)
        for i in range(1, 200):
            delivery.put([batch(i)])
        deadline = time.monotonic() + 20
        while delivery.failure is None and time.monotonic() < deadline:
            time.sleep(0.05)
        delivery.stop(timeout=5)
    assert delivery.failure is not None and "No space left on device" in str(delivery.failure)
    assert any("delivery stopped" in r.message for r in caplog.records)
    kept = len(spool)
    assert kept > 0  # what fit is kept, in order, for the next start
    # and what did not fit is counted and logged, not dropped in silence
    assert delivery.lost > 0 and kept + delivery.lost <= 200
    assert any("they are lost" in r.message for r in caplog.records)
