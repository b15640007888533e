"""collector/host.py parsing and arithmetic on fixed /proc texts (no database)."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from pganalytics.collector.host import (
    HostSampler,
    cpu_ratios,
    disk_usage,
    parse_btime,
    parse_cpu,
    parse_loadavg,
    parse_meminfo,
    process_start,
    remote_reason,
)

STAT_1 = """cpu  1000 50 300 8000 400 0 150 100 70 0
cpu0 500 25 150 4000 200 0 75 50 35 0
intr 1 2 3
btime 1700000000
"""
# +200 user, +0 nice, +100 system, +600 idle, +50 iowait, +50 softirq, +0 steal (guest +10
# is inside user): total +1000
STAT_2 = """cpu  1200 50 400 8600 450 0 200 100 80 0
btime 1700000000
"""
MEMINFO = """MemTotal:       24684096 kB
MemFree:        18860852 kB
MemAvailable:   22334108 kB
HugePages_Total:       0
"""


def test_parse_cpu_sums_first_eight_fields_only():
    assert parse_cpu(STAT_1) == (1000 + 50 + 300 + 8000 + 400 + 0 + 150 + 100, 8000, 400)


def test_parse_cpu_without_aggregate_line():
    with pytest.raises(ValueError):
        parse_cpu("cpu0 1 2 3 4\n")


def test_cpu_ratios_exact():
    busy, iowait = cpu_ratios(parse_cpu(STAT_1), parse_cpu(STAT_2))
    assert busy == 1 - (600 + 50) / 1000 == pytest.approx(0.35)
    assert iowait == 50 / 1000


def test_cpu_ratios_no_time_and_iowait_going_down():
    a = (1000, 800, 100)
    assert cpu_ratios(a, a) is None
    busy, iowait = cpu_ratios(a, (1100, 890, 95))  # 5 iowait ticks moved to idle
    assert (busy, iowait) == (1 - 85 / 100, 0.0)


def test_meminfo_in_bytes():
    mem = parse_meminfo(MEMINFO)
    assert mem["MemTotal"] == 24684096 * 1024
    assert mem["MemAvailable"] == 22334108 * 1024
    assert mem["HugePages_Total"] == 0


def test_loadavg():
    assert parse_loadavg("1.39 1.27 1.17 2/125 14658\n") == (1.39, 1.27, 1.17)


def test_process_start_counts_fields_after_command_name():
    text = "4242 (postgres: a) b (c)) S 1 4242 4242 0 -1 4194560 " + " ".join(["0"] * 12) + " 123450 99 9"
    assert process_start(text, parse_btime(STAT_1), 100) == 1700000000 + 1234.5


def test_disk_usage_like_df():
    st = SimpleNamespace(f_frsize=4096, f_blocks=1000, f_bfree=300, f_bavail=250)
    assert disk_usage(st) == (4096000, 700 * 4096, 250 * 4096)


@pytest.mark.parametrize("host,hostaddr,local", [
    ("/var/run/postgresql", "", True), ("@pgsock", None, True), (None, None, True),
    ("localhost", "127.0.0.1", True), ("127.0.0.1", None, True), ("127.0.1.1", None, True),
    ("::1", None, True), ("db.example", "127.0.0.1", True),
    ("10.1.2.3", "10.1.2.3", False), ("db.example", "192.0.2.7", False), ("db.example", None, False),
])
def test_remote_reason(host, hostaddr, local):
    assert remote_reason(host, hostaddr) == (None if local else "remote target")


def _proc(tmp_path, stat):
    (tmp_path / "stat").write_text(stat)
    (tmp_path / "meminfo").write_text(MEMINFO)
    (tmp_path / "loadavg").write_text("0.50 0.25 0.10 1/100 42\n")


def test_sampler_cpu_from_second_call_and_exact_values(tmp_path):
    _proc(tmp_path, STAT_1)
    sampler = HostSampler(proc=str(tmp_path))
    sampler.reason, sampler.data_directory = None, str(tmp_path)  # as check() leaves it when local
    first = {(m, tuple(lab.items())): v for m, lab, k, v in sampler.sample()}
    assert not any(m.startswith("host_cpu") for m, _ in first)
    assert first[("host_metrics_available", ())] == 1.0
    assert first[("host_memory_total_bytes", ())] == 24684096 * 1024
    assert first[("host_memory_available_bytes", ())] == 22334108 * 1024
    assert [first[(f"host_load{n}", ())] for n in (1, 5, 15)] == [0.5, 0.25, 0.1]
    st = os.statvfs(tmp_path)
    assert first[("host_disk_total_bytes", (("path", str(tmp_path)),))] == st.f_blocks * st.f_frsize
    (tmp_path / "stat").write_text(STAT_2)
    second = {m: v for m, _, k, v in sampler.sample()}
    assert second["host_cpu_busy_ratio"] == pytest.approx(0.35)
    assert second["host_cpu_iowait_ratio"] == 0.05


def test_sampler_unavailable_is_one_sample_and_reads_nothing(tmp_path):
    sampler = HostSampler(proc=str(tmp_path / "missing"))
    sampler.reason = "remote target"
    assert sampler.sample() == [("host_metrics_available", {"reason": "remote target"}, "gauge", 0.0)]


def test_sampler_leaves_out_what_it_cannot_read(tmp_path):
    (tmp_path / "loadavg").write_text("3.0 2.0 1.0 1/1 1\n")
    sampler = HostSampler(proc=str(tmp_path))
    sampler.reason, sampler.data_directory = None, str(tmp_path / "gone")
    assert sorted(m for m, *_ in sampler.sample()) == [
        "host_load1", "host_load15", "host_load5", "host_metrics_available"]


class _FakeConn:
    """A loopback connection whose server reports the given backend (no database needed)."""

    def __init__(self, datadir, pid, started):
        self.info = SimpleNamespace(host="127.0.0.1", hostaddr="127.0.0.1")
        self.row = (datadir, pid, started)

    def transaction(self):
        import contextlib
        return contextlib.nullcontext()

    def execute(self, *a):
        return SimpleNamespace(fetchone=lambda: self.row)


def test_check_matches_the_backend_process_by_start_time(tmp_path):
    from datetime import datetime, timedelta, timezone

    with open(f"/proc/{os.getpid()}/stat") as f:
        with open("/proc/stat") as g:
            started = process_start(f.read(), parse_btime(g.read()), os.sysconf("SC_CLK_TCK"))
    me = datetime.fromtimestamp(started, timezone.utc)
    sampler = HostSampler()
    assert sampler.check(_FakeConn(str(tmp_path), os.getpid(), me)) is None
    assert sampler.data_directory == str(tmp_path)
    # a port forwarded to loopback: the server's backend PID here is another process
    assert sampler.check(_FakeConn(str(tmp_path), os.getpid(), me - timedelta(hours=1))) == \
        "server process not on this host"
    assert sampler.data_directory is None and sampler.sample()[0][1] == {"reason": "server process not on this host"}
    assert sampler.check(_FakeConn(str(tmp_path), 2**22 + 1, me)) == "server process not visible here"
    assert sampler.check(_FakeConn(str(tmp_path / "nope"), os.getpid(), me)) == \
        "data_directory not visible here: No such file or directory"


def test_a_verified_backend_survives_a_clock_step(tmp_path):
    """btime follows the wall clock: after a step the same backend's start times disagree."""
    from datetime import datetime, timezone

    with open(f"/proc/{os.getpid()}/stat") as f:
        pid_stat = f.read()
    with open("/proc/stat") as g:
        stat = g.read()
    started = datetime.fromtimestamp(process_start(pid_stat, parse_btime(stat), os.sysconf("SC_CLK_TCK")), timezone.utc)
    proc = tmp_path / "proc"
    (proc / str(os.getpid())).mkdir(parents=True)
    (proc / str(os.getpid()) / "stat").write_text(pid_stat)
    (proc / "stat").write_text(stat)
    sampler = HostSampler(proc=str(proc))
    assert sampler.check(_FakeConn(str(tmp_path), os.getpid(), started)) is None
    btime = parse_btime(stat)
    (proc / "stat").write_text(stat.replace(f"btime {btime}", f"btime {btime + 3600}"))
    assert sampler.check(_FakeConn(str(tmp_path), os.getpid(), started)) is None
    # a backend not verified before is still compared (and fails against the stepped btime)
    from datetime import timedelta
    assert sampler.check(_FakeConn(str(tmp_path), os.getpid(), started + timedelta(seconds=1))) == \
        "server process not on this host"
