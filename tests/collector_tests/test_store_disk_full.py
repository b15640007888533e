"""A full disk on the store is reported, and nothing is lost: the store's raw frames go to a
tablespace on a real, tiny filesystem (tmpfs); when it fills, PostgreSQL refuses the group
(53100 disk_full), delivery says so in its log, keeps the group in the spool and retries; once
the disk has room again every batch lands exactly once."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from pganalytics.collector.batch import SamplesBatch
from pganalytics.collector.delivery import Delivery
from pganalytics.collector.spool import Spool

# recent (the store refuses batches more than a day ahead) and early in a day: one partition
T0 = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
BATCHES = 400  # 400 frames of 250 values: ~880 kB of heap, far more than the 256 kB disk


def server_dir() -> tuple[Path, str, int]:
    """A new directory the server can reach: (its path here, its path as the server sees it,
    the uid of the server's postgres user, from its own root's /etc/passwd)."""
    suite = os.environ.get("PGANALYTICS_TEST_CHROOT")
    root = Path("/")
    if suite:
        import chroot  # tests/chroot.py

        root = Path(__file__).resolve().parents[2] / ".cache" / f"chroot-{chroot.suite_for(suite)}"
    here = Path(tempfile.mkdtemp(prefix="pga-tblspc-", dir=root / "tmp"))
    uid = next(int(line.split(":")[2]) for line in (root / "etc" / "passwd").read_text().splitlines()
               if line.startswith("postgres:"))
    return here, "/" + str(here.relative_to(root)), uid


@pytest.fixture
def tiny_tablespace(store_dsn, request):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if request.config.getoption("--test-dsn"):
        pytest.skip("the server is not on this machine")
    mount, seen_as, uid = server_dir()
    os.chmod(mount, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)], check=True)
    os.chown(mount, uid, uid)
    name = f"tiny_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLESPACE {name} LOCATION '{seen_as}'")
        conn.execute(f"GRANT CREATE ON TABLESPACE {name} TO pganalytics_owner")
        # a partitioned table's tablespace is where its new partitions go
        conn.execute(f"ALTER TABLE pganalytics.sample_frames SET TABLESPACE {name}")
        conn.execute("SELECT pganalytics.register_instance('full1', 'service=full1')")
    yield mount
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        for (part,) in conn.execute("SELECT c.oid::regclass::text FROM pg_class c JOIN pg_tablespace t "
                                    "ON t.oid = c.reltablespace WHERE t.spcname = %s AND c.relkind = 'r'",
                                    (name,)).fetchall():
            conn.execute(f"DROP TABLE {part}")
        conn.execute("ALTER TABLE pganalytics.sample_frames SET TABLESPACE pg_default")
        conn.execute(f"DROP TABLESPACE {name}")
    subprocess.run(["umount", str(mount)], check=True)
    shutil.rmtree(mount, ignore_errors=True)


def frames_stored(store_dsn: str) -> tuple[int, int]:
    with psycopg.connect(store_dsn) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT ts) FROM pganalytics.sample_frames").fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_full_store_disk_is_reported_and_nothing_is_lost(store_dsn, tiny_tablespace, tmp_path, caplog):
    spool = Spool(tmp_path / "spool")
    delivery = Delivery(store_dsn, spool, retry_s=0.2)
    series = [(f"m{k}", {"k": str(k)}, "gauge", float(k)) for k in range(250)]
    with caplog.at_level(logging.WARNING, logger="pganalytics.collector.delivery"):
        delivery.start()
        for i in range(0, BATCHES, 20):
            delivery.put([SamplesBatch("full1", "host", T0 + timedelta(seconds=j), series)
                          for j in range(i, i + 20)])
        deadline = time.monotonic() + 60
        while not (any("No space left on device" in r.getMessage() for r in caplog.records) and len(spool)):
            assert time.monotonic() < deadline, "delivery never reported the full disk"
            time.sleep(0.05)
        assert delivery.failure is None  # the store is short of room, not wrong: delivery goes on
        stored, _ = frames_stored(store_dsn)
        assert stored < BATCHES and len(spool) > 0  # what the store could not take is kept
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_tablespace)], check=True)
        deadline = time.monotonic() + 60
        while frames_stored(store_dsn)[0] < BATCHES or len(spool):
            assert time.monotonic() < deadline, f"not replayed: {frames_stored(store_dsn)}, {len(spool)} spooled"
            time.sleep(0.1)
        delivery.stop()
    assert frames_stored(store_dsn) == (BATCHES, BATCHES)  # each batch once
    assert delivery.failure is None and delivery.lost == 0
