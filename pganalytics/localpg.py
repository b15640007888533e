"""A throwaway PostgreSQL cluster under a project-local directory.

Used by the test harness and by `pganalytics demo`: no system service, no Docker. PostgreSQL
refuses to run as root, so when we are root the server runs as the `postgres` user, and what
it must reach (its data directory, and server binaries fetched by scripts/pg-bindir.sh) goes
where that user can reach it: a directory it cannot enter (a checkout in /root, mode 700) is
replaced by its stand-in under /var/lib/pganalytics-dev/ (see `reachable_dir`). No home
directory is ever chmod-ed.
"""
from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"
# Stand-ins for directories the server user cannot enter; scripts/pg-bindir.sh uses the same.
STANDIN_BASE = Path("/var/lib/pganalytics-dev")


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


def server_can_enter(path: Path) -> bool:
    """Whether the server user can reach `path` through all its parents (always true when the
    server runs as ourselves, i.e. when we are not root)."""
    if os.geteuid() != 0:
        return True
    done = subprocess.run(["runuser", "-u", PG_USER, "--", "test", "-x", str(path)],
                          cwd="/", capture_output=True)
    return done.returncode == 0


def standin_dir(path: Path) -> Path:
    """Where what belongs in `path` goes when the server user cannot enter it: one directory per
    path under STANDIN_BASE (root-owned, mode 755), named after its last two components and a
    hash of the whole, e.g. /root/pganalytics/.demo -> /var/lib/pganalytics-dev/
    pganalytics-.demo-1a2b3c4d (short: a socket path must fit in 107 bytes).
    scripts/pg-bindir.sh computes the same name."""
    path = Path(os.path.realpath(path))
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return STANDIN_BASE / f"{path.parent.name}-{path.name}-{digest}"


def reachable_dir(path: str | Path) -> Path:
    """`path` (created if missing) when the server user can enter it, else its stand-in (see
    standin_dir), created root-owned and mode 755."""
    path = Path(path).resolve()
    path.mkdir(parents=True, exist_ok=True)
    if server_can_enter(path):
        return path
    standin = standin_dir(path)
    for d in (STANDIN_BASE, standin):
        d.mkdir(mode=0o755, exist_ok=True)
        os.chmod(d, 0o755)
    return standin


def _as_server_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    program = Path(cmd[0]).name
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    # From "/": the caller's working directory may be one the server user cannot enter.
    kw.setdefault("cwd", "/")
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
        if not server_can_enter(self.datadir.parent):
            raise RuntimeError(f"the {PG_USER} user cannot enter {self.datadir.parent} (a parent "
                               f"directory is not traversable): put the cluster in "
                               f"localpg.reachable_dir({str(self.datadir.parent)!r})")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.datadir, 0o700)
        _as_server_user([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", PG_USER,
                         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            # The socket beside the data; none (TCP only: every DSN here says host=127.0.0.1)
            # when its path would not fit in a socket address (107 bytes).
            "unix_socket_directories": (f"'{self.datadir}'" if len(str(self.datadir)) <= 90
                                        else "''"),
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
