"""A throwaway PostgreSQL cluster under a project-local directory.

Used by the test harness and by `pganalytics demo`: no system service, no Docker. PostgreSQL
refuses to run as root, so when we are root the server runs as the `postgres` user.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"


def find_bindir(explicit: str | None = None) -> Path:
    """The newest installed server binaries, or PGANALYTICS_PG_BINDIR when set."""
    candidate = explicit or os.environ.get("PGANALYTICS_PG_BINDIR")
    if candidate:
        path = Path(candidate)
        if not (path / "postgres").exists():
            raise RuntimeError(f"PGANALYTICS_PG_BINDIR={candidate} holds no 'postgres' binary")
        return path
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql: "
                           "run `make setup` (it installs the distribution's postgresql package)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    program = Path(cmd[0]).name
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{program} failed (exit {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()}")
    return done


@dataclass
class LocalCluster:
    datadir: Path
    port: int
    bindir: Path

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres"

    def dsn_for(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={dbname}"

    @property
    def pidfile(self) -> Path:
        return self.datadir / "postmaster.pid"

    def running(self) -> bool:
        if not self.pidfile.exists():
            return False
        pid = int(self.pidfile.read_text().split()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def init(self, settings: dict[str, str] | None = None) -> None:
        """initdb once; the directory is reused on the next run (safe to run twice)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        # The server user must be able to reach the directory through its parents.
        for parent in self.datadir.parents:
            if parent.stat().st_uid == os.geteuid() and str(parent).startswith(("/tmp/", "/var/tmp/")):
                os.chmod(parent, parent.stat().st_mode | 0o711)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.datadir, 0o700)
        _as_server_user([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", PG_USER,
                         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.datadir}'",
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "all",
            "compute_query_id": "on",
            "fsync": "on",
            "max_connections": "200",
        }
        conf.update(settings or {})
        with open(self.datadir / "postgresql.auto.conf", "a") as fh:
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")

    def start(self, timeout: float = 60) -> None:
        if self.running():
            return
        log = self.datadir / "server.log"
        _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(log),
                         "-o", f"-p {self.port}", "-w", "-t", str(int(timeout)), "start"])

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
                             "-w", "stop"])

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)

    def version_num(self) -> int:
        out = _as_server_user([str(self.bindir / "postgres"), "--version"]).stdout
        return int(out.split()[-1].split(".")[0])


def wait_ready(dsn: str, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
