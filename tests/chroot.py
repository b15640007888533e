"""PostgreSQL 17 and 18 *with plpython3u and numpy* for the tests, from Debian chroots.

A thin wrapper around scripts/pg-chroot.sh (which does the work and is usable alone): the
chroot `.cache/chroot-SUITE/` of the checkout is built once (debootstrap + apt, about a
minute), each `start` gives a fresh cluster in it. Needs root. Test harness only: the
script lives in the checkout, not in the installed distribution.

    dsn = chroot.start("trixie", 55417)      # or chroot.start(17)
    ...
    chroot.stop("trixie")
"""
from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pg-chroot.sh"
# The Debian suite whose default PostgreSQL major version is the key.
SUITES = {17: "trixie", 18: "sid"}


def suite_for(which: str | int) -> str:
    """'trixie' / 'sid' as given, or the suite of a major version (17, '18')."""
    if isinstance(which, int) or str(which).isdigit():
        try:
            return SUITES[int(which)]
        except KeyError:
            raise ValueError(f"no chroot suite gives PostgreSQL {which} "
                             f"(known: {', '.join(map(str, SUITES))})") from None
    if which not in SUITES.values():
        raise ValueError(f"unknown suite {which!r} (known: {', '.join(SUITES.values())})")
    return str(which)


def _run(*args: str, timeout: float) -> str:
    if not SCRIPT.exists():
        raise RuntimeError(f"{SCRIPT} not found: chroot servers need a checkout")
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"pg-chroot.sh {' '.join(args)} failed (exit {done.returncode}):\n{tail}")
    return done.stdout.strip()


def start(which: str | int, port: int | None = None, timeout: float = 900) -> str:
    """Start (building the chroot first if needed) and return a superuser DSN. Without a
    port, a free one is picked."""
    if port is None:
        from pganalytics.localpg import free_port
        port = free_port()
    return _run("start", suite_for(which), str(port), timeout=timeout)


def stop(which: str | int, timeout: float = 120) -> None:
    """Stop the server, unmount what it needed, remove its cluster. Safe when not running."""
    _run("stop", suite_for(which), timeout=timeout)


def version(which: str | int) -> int:
    """Major version of the server in an already built chroot."""
    return int(_run("version", suite_for(which), timeout=60))
