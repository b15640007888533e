"""Host metrics (CPU, memory, load, disk of the data directory) when the collector runs on
the database host, read from /proc and statvfs (no psutil). Anywhere else they are recorded
as not available, with a reason, and never invented.

"On the database host" means all of: the connection goes through a Unix socket or to a
loopback address; the server's data_directory (needs superuser or pg_read_all_settings, which
pg_monitor includes) exists here; and our backend's PID is a process here that started when
the server says our backend started. The last check rejects ports forwarded to loopback
(containers, SSH tunnels, a local pgbouncer) whose server runs elsewhere. Reasons are short
fixed phrases (no PIDs or paths): labels identify a series, so a varying reason would churn.
"""
from __future__ import annotations

import ipaddress
import os

import psycopg

from .batch import SamplesBatch

Sample = tuple[str, dict, str, float]  # (metric, labels, kind, value)
START_TOLERANCE_S = 3.0  # /proc/stat btime is whole seconds; process start is in clock ticks


def parse_cpu(stat_text: str) -> tuple[int, int, int]:
    """(total, idle, iowait) ticks of /proc/stat's aggregate "cpu" line. Only the first eight
    fields are summed: guest and guest_nice are already counted in user and nice."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:9]]
            return sum(f), f[3], f[4] if len(f) > 4 else 0
    raise ValueError("/proc/stat has no aggregate cpu line")


def cpu_ratios(prev: tuple[int, int, int], cur: tuple[int, int, int]) -> tuple[float, float] | None:
    """(busy, iowait) fractions over the interval between two parse_cpu() readings; None when
    no time passed. The kernel's iowait may go down (ticks move to idle), so busy uses
    idle+iowait as counted and iowait alone is clamped at 0."""
    total, idle, iowait = (c - p for c, p in zip(cur, prev))
    if total <= 0:
        return None
    clamp = lambda x: min(1.0, max(0.0, x))  # noqa: E731
    return clamp(1 - (idle + iowait) / total), clamp(iowait / total)


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes by field name (the kernel's "kB" is KiB)."""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def parse_loadavg(text: str) -> tuple[float, float, float]:
    one, five, fifteen = text.split()[:3]
    return float(one), float(five), float(fifteen)


def process_start(pid_stat_text: str, btime: int, hz: int) -> float:
    """Epoch seconds a process started, from /proc/PID/stat (field 22, ticks since boot).
    Fields are counted after the last ')', since the command name may hold spaces."""
    return btime + int(pid_stat_text.rpartition(")")[2].split()[19]) / hz


def parse_btime(stat_text: str) -> int:
    return next(int(line.split()[1]) for line in stat_text.splitlines() if line.startswith("btime "))


def disk_usage(st) -> tuple[int, int, int]:
    """(total, used, available) bytes like df: available is what non-root may still use, so
    used + available < total by the reserved blocks."""
    return st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize


def remote_reason(host: str | None, hostaddr: str | None = None) -> str | None:
    """None when libpq's host is a Unix socket (a directory, or @abstract) or loopback."""
    if not host or host.startswith(("/", "@")) or host == "localhost":
        return None
    for candidate in (host, hostaddr):
        try:
            if candidate and ipaddress.ip_address(candidate).is_loopback:
                return None
        except ValueError:
            pass
    return "remote target"


class HostSampler:
    """Keep one per target across cycles: CPU ratios need the previous /proc/stat reading.
    Call check(conn) each cycle (the answer can change), then host_batch()."""

    def __init__(self, proc: str = "/proc"):
        self.proc = proc
        self.data_directory: str | None = None
        self.reason: str | None = "not checked"  # why not available; None when available
        self._cpu: tuple[int, int, int] | None = None
        self._verified: tuple | None = None  # (data_directory, pid, backend_start) found here

    def _read(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.proc, name)) as f:
                return f.read()
        except OSError:
            return None

    def check(self, conn: psycopg.Connection) -> str | None:
        """Decide from this connection whether we are on its host; returns the reason if not."""
        self.data_directory = None
        self.reason = self._locate(conn)  # sets data_directory when local
        if self.reason:
            self._cpu = None  # no rate across a gap
        return self.reason

    def _locate(self, conn) -> str | None:
        try:
            hostaddr = conn.info.hostaddr
        except psycopg.Error:  # libpq < 12
            hostaddr = None
        if reason := remote_reason(conn.info.host, hostaddr):
            return reason
        if (stat := self._read("stat")) is None:
            return "no /proc/stat here"
        try:
            with conn.transaction():  # a savepoint when conn is already in a transaction
                datadir, pid, started = conn.execute(
                    "SELECT current_setting('data_directory'), pid, backend_start "
                    "FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return "data_directory not readable: permission denied"
        except psycopg.Error as exc:
            return f"data_directory not readable: {exc.diag.message_primary or type(exc).__name__}"
        try:
            os.stat(datadir)
        except OSError as exc:
            return f"data_directory not visible here: {exc.strerror}"
        if (pid_stat := self._read(f"{pid}/stat")) is None:
            return "server process not visible here"
        # The start times are compared once per backend: /proc/stat's btime is the wall clock
        # minus the uptime, so it moves when the clock is stepped (NTP, a VM resumed from a
        # snapshot) and a long-lived connection would fail the comparison from then on.
        if self._verified != (datadir, pid, started):
            here = process_start(pid_stat, parse_btime(stat), os.sysconf("SC_CLK_TCK"))
            if abs(here - started.timestamp()) > START_TOLERANCE_S:
                return "server process not on this host"
            self._verified = (datadir, pid, started)
        self.data_directory = datadir
        return None

    def sample(self) -> list[Sample]:
        """Gauges now; CPU ratios only from the second call on. A file that cannot be read
        leaves its metrics out rather than reporting zeros."""
        if self.reason:
            return [("host_metrics_available", {"reason": self.reason}, "gauge", 0.0)]
        out: list[Sample] = [("host_metrics_available", {}, "gauge", 1.0)]
        if (stat := self._read("stat")) is not None:
            prev, self._cpu = self._cpu, parse_cpu(stat)
            if prev and (r := cpu_ratios(prev, self._cpu)):
                out += [("host_cpu_busy_ratio", {}, "gauge", r[0]),
                        ("host_cpu_iowait_ratio", {}, "gauge", r[1])]
        mem = parse_meminfo(self._read("meminfo") or "")
        for field, metric in (("MemAvailable", "host_memory_available_bytes"),
                              ("MemTotal", "host_memory_total_bytes")):
            if field in mem:
                out.append((metric, {}, "gauge", float(mem[field])))
        if (loadavg := self._read("loadavg")) is not None:
            out += [(f"host_load{n}", {}, "gauge", v) for n, v in zip((1, 5, 15), parse_loadavg(loadavg))]
        assert self.data_directory is not None  # set whenever reason is None (_locate)
        sizes: tuple[int, ...]
        try:
            sizes = disk_usage(os.statvfs(self.data_directory))
        except OSError:
            sizes = ()
        out += [(f"host_disk_{k}_bytes", {"path": self.data_directory}, "gauge", float(v))
                for k, v in zip(("total", "used", "available"), sizes)]
        return out


def host_batch(sampler: HostSampler, instance: str, collected_at) -> SamplesBatch:
    return SamplesBatch(instance, "host", collected_at, sampler.sample())
