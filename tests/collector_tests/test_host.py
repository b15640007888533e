"""Host metrics against the harness server (local: same machine, loopback or Unix socket)."""
from __future__ import annotations

import os
import re
import time
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import psycopg
import pytest

from pganalytics.collector.host import HostSampler, host_batch, parse_meminfo
from pganalytics.collector.sink import Sink

NAME_RE = r"^[a-z][a-z0-9_]*$"


@pytest.fixture
def local_dsn(server_dsn):
    """The harness server, when its data directory is visible here (not in a chroot)."""
    with psycopg.connect(server_dsn) as conn:
        datadir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    if not os.path.isdir(datadir):
        pytest.skip(f"the test server's data directory {datadir} is not visible here")
    return server_dsn


def _by_metric(samples):
    return {m: (labels, v) for m, labels, _, v in samples}


def test_local_server_gives_plausible_host_metrics(local_dsn):
    sampler = HostSampler()
    with psycopg.connect(local_dsn, autocommit=True) as conn:
        assert sampler.check(conn) is None
        datadir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    first = _by_metric(sampler.sample())
    assert first["host_metrics_available"] == ({}, 1.0)
    assert "host_cpu_busy_ratio" not in first
    with open("/proc/meminfo") as f:
        assert first["host_memory_total_bytes"][1] == parse_meminfo(f.read())["MemTotal"]
    assert 0 < first["host_memory_available_bytes"][1] <= first["host_memory_total_bytes"][1]
    labels, total = first["host_disk_total_bytes"]
    assert labels == {"path": datadir} and total > 0
    assert first["host_disk_used_bytes"][1] + first["host_disk_available_bytes"][1] <= total
    assert all(first[f"host_load{n}"][1] >= 0 for n in (1, 5, 15))
    time.sleep(0.05)  # at least a few clock ticks
    second = _by_metric(sampler.sample())
    for name in ("host_cpu_busy_ratio", "host_cpu_iowait_ratio"):
        assert 0 <= second[name][1] <= 1
    assert all(re.match(NAME_RE, m) for m in second)


def test_unix_socket_is_local(local_dsn):
    with psycopg.connect(local_dsn) as conn:
        socket_dir = conn.execute("SELECT split_part(current_setting('unix_socket_directories'), ',', 1)").fetchone()[0]
    if not socket_dir or not os.path.exists(socket_dir):
        pytest.skip("the test server has no Unix socket visible here")
    params = psycopg.conninfo.conninfo_to_dict(local_dsn) | {"host": socket_dir.strip()}
    with psycopg.connect(psycopg.conninfo.make_conninfo(**params)) as conn:
        assert conn.info.host.startswith("/")
        assert HostSampler().check(conn) is None


def test_remote_target_is_not_available_and_sends_nothing():
    def no_traffic(*a, **k):
        raise AssertionError("a remote target must not be queried")
    fake = SimpleNamespace(info=SimpleNamespace(host="10.1.2.3", hostaddr="10.1.2.3"),
                           execute=no_traffic, transaction=no_traffic)
    sampler = HostSampler()
    assert sampler.check(fake) == "remote target"
    batch = host_batch(sampler, "h", datetime.now(timezone.utc))
    assert batch.source == "host"
    assert batch.samples == [("host_metrics_available", {"reason": "remote target"}, "gauge", 0.0)]


def test_role_without_settings_privilege_is_not_available(local_dsn):
    role = f"pga_host_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(local_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            params = psycopg.conninfo.conninfo_to_dict(local_dsn) | {"user": role}
            with psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True) as conn:
                assert HostSampler().check(conn) == "data_directory not readable: permission denied"
            admin.execute(f"GRANT pg_monitor TO {role}")  # pg_monitor includes pg_read_all_settings
            with psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True) as conn:
                assert HostSampler().check(conn) is None
        finally:
            admin.execute(f"DROP ROLE {role}")


def test_check_inside_a_transaction_leaves_it_usable(local_dsn):
    with psycopg.connect(local_dsn) as conn:  # not autocommit: check() uses a savepoint
        conn.execute("SELECT 1")
        assert HostSampler().check(conn) is None
        assert conn.execute("SELECT 2").fetchone()[0] == 2


def test_delivery_into_the_store(local_dsn, store_dsn):
    sampler = HostSampler()
    with psycopg.connect(local_dsn, autocommit=True) as conn:
        sampler.check(conn)
    with psycopg.connect(store_dsn, autocommit=True) as store:
        store.execute("SELECT pganalytics.register_instance('h', 'host=127.0.0.1')")
        sink = Sink(store)
        at = datetime.now(timezone.utc)
        sampler.sample()
        time.sleep(0.05)
        batch = host_batch(sampler, "h", at)
        assert sink.deliver(batch) == len(batch.samples) == 11
        assert sink.deliver(batch) == 0  # re-sent: the ledger already has it
        unavailable = HostSampler()
        unavailable.reason = "remote target"
        later = host_batch(unavailable, "h", datetime.now(timezone.utc))
        assert sink.deliver(later) == 1
        rows = dict(store.execute(
            "SELECT s.metric || coalesce(' ' || (s.labels->>'reason'), ''), x.value "
            "FROM pganalytics.series s JOIN pganalytics.samples x USING (instance_id, series_id)").fetchall())
        assert rows["host_metrics_available"] == 1.0
        assert rows["host_metrics_available remote target"] == 0.0
        assert 0 <= rows["host_cpu_busy_ratio"] <= 1
        assert rows["host_disk_total_bytes"] > 0
        assert store.execute("SELECT count(*) FROM pganalytics.sample_frames").fetchone()[0] == 2  # a frame each
