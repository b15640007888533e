"""Test harness: every test that touches SQL runs against a real PostgreSQL server.

By default a throwaway cluster is started from the newest local server binaries (as the
`postgres` user when running as root) and removed afterwards. To use a running server
instead, name a superuser DSN:  PGANALYTICS_TEST_DSN="host=... user=postgres" make test
(or pytest --test-dsn ...). PGANALYTICS_PG_BINDIR picks other server binaries, and
PGANALYTICS_TEST_CHROOT=17 (or 18) runs the suite on a Debian trixie (sid) chroot server that
has plpython3u and numpy (scripts/pg-chroot.sh; needs root).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from pganalytics import localpg, store

_cluster: localpg.LocalCluster | None = None
_chroot: str | None = None
_server_dsn: str | None = None
_server_version: int = 0


def pytest_addoption(parser):
    parser.addoption("--test-dsn", default=os.environ.get("PGANALYTICS_TEST_DSN"),
                     help="superuser DSN of a running server to test against "
                          "(default: start a throwaway cluster)")


def pytest_configure(config):
    global _cluster, _chroot, _server_dsn, _server_version
    _server_dsn = config.getoption("--test-dsn")
    _chroot = None if _server_dsn else os.environ.get("PGANALYTICS_TEST_CHROOT") or None
    if _chroot:
        import chroot  # tests/chroot.py: test harness only, not shipped

        _server_dsn = chroot.start(_chroot)
    elif not _server_dsn:
        base = Path(tempfile.mkdtemp(prefix="pganalytics-test-"))
        _cluster = localpg.LocalCluster(base / "data", localpg.free_port(), localpg.find_bindir())
        _cluster.init()
        _cluster.start()
        _server_dsn = _cluster.dsn
    localpg.wait_ready(_server_dsn)
    with psycopg.connect(_server_dsn, autocommit=True) as conn:
        _server_version = conn.info.server_version


def pytest_unconfigure(config):
    if _chroot:
        import chroot  # tests/chroot.py: test harness only, not shipped

        chroot.stop(_chroot)
    if _cluster is not None:
        _cluster.destroy()
        shutil.rmtree(_cluster.datadir.parent, ignore_errors=True)


def pytest_report_header(config):
    where = (f"throwaway cluster in {_cluster.datadir}" if _cluster
             else f"Debian chroot for PostgreSQL {_chroot}" if _chroot else "PGANALYTICS_TEST_DSN")
    with psycopg.connect(_server_dsn) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
    return [f"PostgreSQL server: {version} ({where})"]


def _version_matches(spec: str, version: int) -> bool:
    op, _, num = spec.strip().partition(" ")
    want = int(num) * 10000
    major = version // 10000 * 10000
    return {">=": major >= want, ">": major > want, "<": major < want, "<=": major <= want,
            "==": major == want}[op]


def pytest_collection_modifyitems(config, items):
    for item in items:
        for mark in item.iter_markers("pg"):
            if not _version_matches(mark.args[0], _server_version):
                item.add_marker(pytest.mark.skip(
                    reason=f"needs PostgreSQL {mark.args[0]}, server is {_server_version // 10000}"))


@pytest.fixture(scope="session")
def server_dsn() -> str:
    assert _server_dsn is not None  # set by pytest_configure
    return _server_dsn


@pytest.fixture(scope="session")
def server_version() -> int:
    return _server_version


def dsn_with_db(dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **params)


class Databases:
    """Creates databases on the test server and drops them at the end."""

    def __init__(self, admin_dsn: str):
        self.admin_dsn = admin_dsn
        self.created: list[str] = []

    def create(self, template: str | None = None, prefix: str = "t") -> str:
        name = f"pga_{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            clause = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return dsn_with_db(self.admin_dsn, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture
def databases(server_dsn):
    dbs = Databases(server_dsn)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def other_server():
    """Start (once per session) a throwaway server of another major version, fetched by
    scripts/pg-bindir.sh; returns its superuser DSN."""
    import subprocess

    started: dict[str, localpg.LocalCluster] = {}

    def start(major: str) -> str:
        if major not in started:
            script = Path(__file__).resolve().parents[1] / "scripts" / "pg-bindir.sh"
            done = subprocess.run([str(script), major], capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.fail(f"cannot get PostgreSQL {major}: {done.stderr.strip()}")
            base = Path(tempfile.mkdtemp(prefix=f"pganalytics-pg{major}-"))
            cluster = localpg.LocalCluster(base / "data", localpg.free_port(), Path(done.stdout.strip()))
            started[major] = cluster
            cluster.init()
            cluster.start()
            localpg.wait_ready(cluster.dsn)
        return started[major].dsn

    yield start
    for cluster in started.values():
        cluster.destroy()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def store_template(server_dsn):
    """A database with the store installed at head, cloned by each test (CREATE ... TEMPLATE)."""
    dbs = Databases(server_dsn)
    dsn = dbs.create(prefix="template")
    store.upgrade(dsn)
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    yield name
    dbs.drop_all()


@pytest.fixture
def store_dsn(databases, store_template) -> str:
    """DSN of a fresh database holding the installed store (superuser connection)."""
    return databases.create(template=store_template, prefix="store")


@pytest.fixture
def store_conn(store_dsn):
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        yield conn
