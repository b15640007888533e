"""A real Citus cluster for these tests (tests/citus.py): Citus built once for the
distribution's server (scripts/citus-build.sh, cached in .cache/citus/), a coordinator and two
workers started once per session on 127.0.0.1 and stopped at its end. Skipped, with the
reason, only when Citus cannot be built on this platform (no distribution server, not Debian,
no Citus release for its major version, no root); a build that fails is an error.

What the tests measured (build, cluster start, distribution, rows per worker) is printed at
the end of the run."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import citus  # tests/citus.py: test harness only, not shipped
import pytest

# Filled by the fixtures and tests; printed by pytest_terminal_summary.
REPORT: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("Citus cluster")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def citus_build() -> citus.Build:
    try:
        build = citus.build()
    except citus.CitusUnavailable as exc:
        pytest.skip(f"Citus cannot be built on this platform: {exc}")
    REPORT["build"] = (f"Citus for PostgreSQL {build.major} in {build.seconds:.1f} s"
                       + (" (cached)" if not build.log else f" ({build.log.splitlines()[-1]})"))
    return build


@pytest.fixture(scope="session")
def citus_cluster(citus_build):
    base = Path(tempfile.mkdtemp(prefix="pganalytics-citus-"))
    cluster = citus.start(base, citus_build.bindir)
    REPORT["cluster"] = (f"Citus {cluster.citus_version}, coordinator :{cluster.coordinator.port}, "
                         f"workers {', '.join(f':{w.port}' for w in cluster.workers)}, "
                         f"started in {cluster.start_seconds:.1f} s")
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)
