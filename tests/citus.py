"""A real Citus cluster for the tests: a coordinator and two workers on 127.0.0.1.

Citus is built from the vendored source release by scripts/citus-build.sh (once per tarball
and server major, cached in .cache/citus/) and installed into the distribution's server
(/usr/lib/postgresql/NN: Citus needs its headers, so not npm's binaries even when
PGANALYTICS_PG_BINDIR names them). Each node is a pganalytics.localpg cluster (run as the
`postgres` user when we are root, loopback only, trust auth) with citus preloaded first, then
pg_stat_statements like every other test cluster. Test harness only.

    build = citus.build()                     # CitusUnavailable when impossible here
    cluster = citus.start(Path("/tmp/x"), build.bindir)
    cluster.dsn                               # superuser DSN of the coordinator's database
    cluster.stop()
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pganalytics import localpg

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "citus-build.sh"
IMPOSSIBLE = 3  # citus-build.sh's exit status when Citus cannot be built on this platform
DBNAME = "pganalytics"  # Citus needs the same database name on every node
SETTINGS = {
    "shared_preload_libraries": "'citus,pg_stat_statements'",
    # Citus commits writes that span nodes with two-phase commit.
    "max_prepared_transactions": "100",
    # Never reach out to the network (the build has no libcurl, which allows only off).
    "citus.enable_statistics_collection": "off",
}


class CitusUnavailable(Exception):
    """Citus cannot be built on this platform (str(): why); the tests skip with it."""


@dataclass
class Build:
    major: int
    bindir: Path
    seconds: float  # what citus-build.sh took (about a second when cached)
    log: str  # what it said (empty when nothing had to be done)


def server_major() -> int:
    """The newest distribution server (what citus-build.sh builds for by default)."""
    found = sorted(int(Path(p).parents[1].name) for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")
                   if Path(p).parents[1].name.isdigit())
    if not found:
        raise CitusUnavailable("no distribution PostgreSQL server under /usr/lib/postgresql")
    return found[-1]


def build(major: int | None = None, timeout: float = 900) -> Build:
    """Run scripts/citus-build.sh (a no-op when built and installed already)."""
    major = major or server_major()
    t0 = time.monotonic()
    done = subprocess.run([str(SCRIPT), str(major)], capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    if done.returncode == IMPOSSIBLE:
        raise CitusUnavailable(done.stderr.strip().removeprefix("citus-build.sh: "))
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-30:])
        raise RuntimeError(f"scripts/citus-build.sh {major} failed (exit {done.returncode}):\n{tail}")
    return Build(major, Path(f"/usr/lib/postgresql/{major}/bin"), seconds, done.stderr.strip())


@dataclass
class CitusCluster:
    coordinator: localpg.LocalCluster
    workers: list[localpg.LocalCluster]
    dbname: str = DBNAME
    start_seconds: float = 0.0
    citus_version: str = ""
    _base: Path | None = field(default=None, repr=False)

    @property
    def nodes(self) -> list[localpg.LocalCluster]:
        return [self.coordinator, *self.workers]

    @property
    def dsn(self) -> str:
        """Superuser DSN of the coordinator's database (the store goes there)."""
        return self.coordinator.dsn_for(self.dbname)

    def worker_dsns(self) -> list[str]:
        return [w.dsn_for(self.dbname) for w in self.workers]

    def stop(self) -> None:
        """Stop every node (by pg_ctl) and remove the data directories."""
        errors = []
        for node in reversed(self.nodes):
            try:
                node.destroy()
            except Exception as exc:  # stop the others anyway
                errors.append(f"{node.datadir}: {exc}")
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
        if errors:
            raise RuntimeError("stopping the Citus cluster: " + "; ".join(errors))


def _bring_up(node: localpg.LocalCluster) -> None:
    node.init(SETTINGS)
    node.start()
    localpg.wait_ready(node.dsn)
    with psycopg.connect(node.dsn, autocommit=True) as conn:
        if not conn.execute("SELECT FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DBNAME}"')
    with psycopg.connect(node.dsn_for(DBNAME), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citus")


def start(base: Path, bindir: Path, workers: int = 2) -> CitusCluster:
    """Initialise and start a coordinator and `workers` workers under `base` (in parallel),
    create the database with the citus extension on each, and register the nodes on the
    coordinator. On failure whatever started is stopped again."""
    t0 = time.monotonic()
    # A directory of ours under /tmp (mkdtemp: mode 700) is opened to the server user as
    # LocalCluster.init does for its parents; anything else it cannot enter gets a stand-in.
    base.mkdir(parents=True, exist_ok=True)
    if str(base.resolve()).startswith(("/tmp/", "/var/tmp/")) and base.stat().st_uid == os.geteuid():
        os.chmod(base, base.stat().st_mode | 0o711)
    base = localpg.reachable_dir(base)
    nodes = [localpg.LocalCluster(base / name, localpg.free_port(), bindir)
             for name in ["coordinator", *(f"worker{i + 1}" for i in range(workers))]]
    cluster = CitusCluster(nodes[0], nodes[1:], _base=base)
    try:
        with ThreadPoolExecutor(len(nodes)) as pool:
            for future in [pool.submit(_bring_up, n) for n in nodes]:
                future.result()
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (cluster.coordinator.port,))
            for w in cluster.workers:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (w.port,))
            active = conn.execute("SELECT count(*) FROM citus_get_active_worker_nodes()").fetchone()
            if not active or active[0] != workers:
                raise RuntimeError(f"the coordinator sees {active and active[0]} active workers, not {workers}")
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()
            cluster.citus_version = row[0] if row else "?"
    except BaseException:
        cluster.stop()
        raise
    cluster.start_seconds = time.monotonic() - t0
    return cluster


def reset_store(cluster: CitusCluster) -> None:
    """Drop what a test installed in the coordinator's database (the schema and Alembic's
    table), so the next one installs afresh; Citus removes the shards on the workers."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS pganalytics CASCADE")
        conn.execute("DROP TABLE IF EXISTS public.alembic_version")


if __name__ == "__main__":  # a cluster by hand: python tests/citus.py (Ctrl-C or SIGTERM stops it)
    import signal
    import tempfile

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIG_IGN)
    b = build()
    c = start(Path(tempfile.mkdtemp(prefix="pganalytics-citus-")), b.bindir)
    print(f"Citus {c.citus_version} on PostgreSQL {b.major}: {c.dsn}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
    os._exit(0)
