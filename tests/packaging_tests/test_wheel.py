"""The built distribution, as `pip install .` and the Dockerfile make it, not the editable
install the other tests use: build the wheel from a copy of the checkout, check what it holds,
install it into a fresh virtualenv with the pins of requirements.lock, and run the README's
commands from there (install, targets add, collect --once, serve) against the test server.

Marked `packaging` (pytest -m packaging runs only these); takes about a minute, mostly pip.
"""
from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import psycopg
import pytest

from pganalytics import localpg

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
# Top-level folders of the checkout that hold Python but never ship.
NOT_SHIPPED = {"tests", "bench"}
# Modules only the test harness uses: they live under tests/, never in the package.
TEST_ONLY = {"pganalytics/chroot.py"}
# What is not copied for the build: caches, venvs, clusters, earlier builds.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".cache", ".pgdata", ".demo", ".pytest_cache",
                                     "__pycache__", "*.pyc", "*.egg-info", "build", "dist",
                                     ".mypy_cache", ".ruff_cache")


def layout() -> dict[str, str]:
    """setup.py's map of installed package -> checkout folder (read, setup() not run)."""
    return runpy.run_path(str(ROOT / "setup.py"), run_name="layout")["LAYOUT"]


def run(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built by pip from a clean copy of the checkout (no stale build/ tree)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE, symlinks=True)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base / "dist"),
         str(src)], timeout=600)
    (found,) = (base / "dist").glob("pganalytics-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies at requirements.lock's pins."""
    path = tmp_path_factory.mktemp("venv") / "v"
    run([sys.executable, "-m", "venv", str(path)])
    run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "requirements.lock"), str(wheel)], timeout=600)
    return path


def shipped_files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def test_wheel_holds_every_package_and_file_of_the_tree(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mapping = layout()
    # Every top-level folder with Python is either mapped into the package or a known
    # non-shipped one: a new top-level package cannot be forgotten silently.
    top = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert top - NOT_SHIPPED == set(mapping.values())
    missing = [f"{package.replace('.', '/')}/{rel.as_posix()}"
               for package, folder in mapping.items() for rel in shipped_files(ROOT / folder)]
    missing = [name for name in missing if name not in names and name not in TEST_ONLY]
    assert not missing, f"not in the wheel: {missing}"
    assert "pganalytics/collector/sources/__init__.py" in names


def test_wheel_ships_no_test_code(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"pganalytics", "pganalytics-0.1.0.dist-info"}
    assert not TEST_ONLY & set(names)
    assert not [n for n in names if n.split("/")[-1].startswith(("test_", "conftest"))
                or "/tests/" in n]


def test_installed_wheel_installs_collects_and_serves(venv, databases, tmp_path):
    dsn = databases.create(prefix="wheel")
    bin_ = venv / "bin"
    # Nothing of the checkout may leak in: no PYTHONPATH, run from an empty directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PGANALYTICS"))}
    env["PGANALYTICS_DSN"] = dsn
    kw = {"cwd": tmp_path, "env": env}

    where = run([str(bin_ / "python"), "-c", "import pganalytics.collector.sources as s; print(s.__file__)"],
                **kw).stdout.strip()
    assert Path(where).is_relative_to(venv), where

    out = run([str(bin_ / "pganalytics"), "install"], **kw).stdout
    assert "pganalytics store at revision" in out
    # The target is the store's own database: a DSN without password, as the store requires.
    out = run([str(bin_ / "pganalytics"), "targets", "add", "wheel-target", "--conn", dsn,
               "--label", "env=test"], **kw).stdout
    assert "target wheel-target registered" in out
    out = run([str(bin_ / "pganalytics"), "collect", "--once"], **kw).stdout
    assert "wheel-target:" in out and "FAILED" not in out, out
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM pganalytics.samples").fetchone()[0]
    assert stored > 0

    port = localpg.free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(bin_ / "pganalytics"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, **kw)
    try:
        health, deadline = None, time.monotonic() + 30
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                    health = (resp.status, json.loads(resp.read()))
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert health is not None, (f"the gateway did not answer (exit {server.poll()}):\n"
                                    + (tmp_path / "serve.log").read_text())
        status, body = health
        assert status == 200 and body["status"] == "ok" and body["store"]["reachable"], body
    finally:
        server.terminate()  # by PID: the process this test started
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        log.close()
