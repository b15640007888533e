"""A checkout in a home the server user cannot enter (cloned into /root, mode 700, as root):
the server binaries fetched by scripts/pg-bindir.sh and the demo's data directory go where
the `postgres` user can reach them, and nothing above the checkout is chmod-ed."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from pganalytics import demo, localpg

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="only root runs the server as another user")


@pytest.fixture
def private_checkout(monkeypatch):
    """A copy of scripts/ in HOME/pganalytics, HOME being root-owned and mode 700 (like /root;
    not in /tmp, whose directories localpg opens up for pytest's tmp_path); the working
    directory is the checkout, as for `make demo`."""
    home = Path(tempfile.mkdtemp(prefix="pganalytics-test-home-", dir="/var/lib"))
    os.chmod(home, 0o700)
    checkout = home / "pganalytics"
    shutil.copytree(REPO / "scripts", checkout / "scripts")
    monkeypatch.chdir(checkout)
    yield home, checkout
    monkeypatch.chdir("/")
    for path in (checkout / ".cache", checkout / ".demo"):
        shutil.rmtree(localpg.standin_dir(path), ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def test_home_is_out_of_reach_of_the_server_user(private_checkout):
    home, checkout = private_checkout
    assert not localpg.server_can_enter(checkout)
    assert localpg.server_can_enter(Path(tempfile.gettempdir()))


def test_bindir_and_demo_cluster_work_as_the_server_user(private_checkout):
    home, checkout = private_checkout
    done = subprocess.run([str(checkout / "scripts" / "pg-bindir.sh"), "16"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    bindir = Path(done.stdout.strip())
    # npm's binaries live in the stand-in of the checkout's .cache, the same name both ways.
    assert bindir.is_relative_to(localpg.standin_dir(checkout / ".cache")), bindir
    assert not (checkout / ".cache").exists()

    datadir = demo.demo_datadir(".demo")
    assert datadir == localpg.standin_dir(checkout / ".demo") / "pgdata"
    cluster = localpg.LocalCluster(datadir, localpg.free_port(), bindir)
    try:
        cluster.init()   # initdb as `postgres`, from a working directory it cannot enter
        cluster.start()
        localpg.wait_ready(cluster.dsn)
        with psycopg.connect(cluster.dsn) as conn:
            assert conn.info.server_version // 10000 == 16
        assert cluster.version_num() == 16
    except RuntimeError:
        log = datadir / "server.log"
        print(log.read_text() if log.exists() else "no server.log")
        raise
    finally:
        cluster.destroy()
    # Nobody opened the home up to get there.
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not localpg.server_can_enter(checkout)


def test_a_reachable_directory_is_used_as_it_is():
    base = Path(tempfile.mkdtemp(prefix="pganalytics-reachable-"))
    try:
        os.chmod(base, 0o755)
        assert localpg.reachable_dir(base / "demo") == base.resolve() / "demo"
    finally:
        shutil.rmtree(base)


def test_a_cluster_out_of_reach_is_refused_in_one_sentence(private_checkout):
    home, checkout = private_checkout
    cluster = localpg.LocalCluster(checkout / "pgdata", localpg.free_port(), localpg.find_bindir())
    with pytest.raises(RuntimeError, match="cannot enter .*reachable_dir"):
        cluster.init()
