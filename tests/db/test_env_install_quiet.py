"""`pganalytics install` and a plain `alembic upgrade head` print our own lines and Alembic's
warnings only: none of Alembic's INFO chatter (`setup plugin ...`, `Context impl ...`,
`Running upgrade ...`) on every run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHATTER = ("setup plugin", "Context impl", "Will assume transactional DDL", "Running upgrade")


def run(args: list[str], **env) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done


def install(dsn: str) -> subprocess.CompletedProcess:
    done = run([sys.executable, "-m", "pganalytics.cli", "install", "--dsn", dsn])
    assert done.stdout.startswith("pganalytics store at revision ")
    return done


def test_install_prints_no_migration_chatter(databases):
    done = install(databases.create(prefix="quiet"))
    for line in ("Context impl", "Will assume transactional DDL", "Running upgrade"):
        assert line not in done.stderr, done.stderr


def test_install_prints_no_setup_plugin_lines(databases):
    done = install(databases.create(prefix="quiet"))
    assert "setup plugin" not in done.stderr, done.stderr
    assert done.stderr == "", done.stderr


def test_plain_alembic_from_the_checkout_is_quiet(databases):
    dsn = databases.create(prefix="quiet")
    done = run([str(Path(sys.executable).parent / "alembic"), "upgrade", "head"],
               PGANALYTICS_DSN=dsn)
    assert not [w for w in CHATTER if w in done.stderr + done.stdout], done.stderr
