"""Runs every tests/pgtap/*.sql file through psql against a fresh store database, so one
pytest command runs everything. A file fails if any TAP line says `not ok` or the plan is
not met."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

FILES = sorted((Path(__file__).parents[1] / "pgtap").glob("*.sql"))


def _psql() -> str:
    from pganalytics.localpg import find_bindir

    try:
        return str(find_bindir() / "psql")
    except RuntimeError:
        return shutil.which("psql") or pytest.fail("psql not found")


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_pgtap_file(store_dsn, path):
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgtap'").fetchone() is None:
            pytest.fail("pgTAP is not installed on the test server (make setup installs it)")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    done = subprocess.run([_psql(), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", store_dsn,
                           "-f", str(path)], capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, done.stderr or out
    planned = re.search(r"^1\.\.(\d+)$", out, re.M)
    assert planned, f"no TAP plan in output:\n{out}"
    oks = re.findall(r"^(not ok|ok) \d+", out, re.M)
    failures = [line for line in out.splitlines() if line.startswith("not ok") or line.startswith("#")]
    assert "not ok" not in oks, "\n".join(failures)
    assert len(oks) == int(planned.group(1)), f"planned {planned.group(1)}, ran {len(oks)}:\n{out}"
