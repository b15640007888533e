"""`pganalytics demo` / `make demo`: the whole system on an embedded local server.

Starts a PostgreSQL cluster under .demo/ (no system service), installs the store with
Alembic, runs a light rate-limited pgbench workload against a `bench` database of the same
server, collects from it every 10 s and serves the gateway on http://127.0.0.1:8080 until
Ctrl-C, then stops everything it started.
"""
from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import psycopg

from . import localpg, store
from .collector.run import collect_once

DEMO_PG_PORT = 54329
COLLECT_EVERY_S = 10


def _ensure_db(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _pgbench(cluster: localpg.LocalCluster, *args: str) -> list[str]:
    return [str(cluster.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port),
            "-U", localpg.PG_USER, *args, "bench"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_demo(directory: str, http_port: int) -> None:
    import uvicorn

    from .gateway.app import create_app
    from .gateway.tokens import new_token, token_digest

    cluster = localpg.LocalCluster(Path(directory).resolve() / "pgdata", DEMO_PG_PORT,
                                   localpg.find_bindir())
    cluster.init()
    cluster.start()
    workload = None
    stop = threading.Event()
    try:
        localpg.wait_ready(cluster.dsn)
        _ensure_db(cluster.dsn, "pganalytics")
        _ensure_db(cluster.dsn, "bench")
        store_dsn, bench_dsn = cluster.dsn_for("pganalytics"), cluster.dsn_for("bench")
        store.upgrade(store_dsn)
        with psycopg.connect(bench_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            initialised = conn.execute("SELECT to_regclass('pgbench_accounts') IS NOT NULL").fetchone()[0]  # type: ignore[index]  # one row
        if not initialised:
            subprocess.run(_pgbench(cluster, "-i", "-s", "2", "-q"), check=True, capture_output=True)
        token = new_token()
        with psycopg.connect(store_dsn, autocommit=True) as conn:
            conn.execute("SELECT pganalytics.register_instance('demo', %s, '{\"env\": \"demo\"}')", (bench_dsn,))
            conn.execute("SELECT pganalytics.api_add_token('demo-' || to_char(now(), 'YYYYMMDDHH24MISSUS'), %s)",
                         (token_digest(token),))
        # ~20 transactions/s: enough to see numbers move, light enough for a laptop.
        workload = subprocess.Popen(_pgbench(cluster, "-c", "2", "-R", "20", "-T", "86400", "-n"),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def collect_loop():
            while not stop.is_set():
                for r in collect_once(store_dsn):
                    if not r.ok:
                        print(f"collector: {r.instance}: {r.error}")
                stop.wait(COLLECT_EVERY_S)

        threading.Thread(target=collect_loop, name="collector", daemon=True).start()
        print(f"\npganalytics demo: store {store_dsn}\n"
              f"  dashboard  http://127.0.0.1:{http_port}/   (API token below)\n"
              f"  API token  {token}\n"
              f"  try        curl -H 'Authorization: Bearer {token}' "
              f"'http://127.0.0.1:{http_port}/api/v2/queries?instance=demo'\n"
              f"  psql       psql \"{store_dsn}\" -c 'SELECT * FROM pganalytics.analyze_query_performance()'\n"
              "  Ctrl-C stops everything.\n", flush=True)
        # uvicorn re-raises the signal that stopped it once it has shut down: make SIGTERM
        # unwind like Ctrl-C so the cleanup below runs either way.
        signal.signal(signal.SIGTERM, _interrupt)
        uvicorn.run(create_app(store_dsn), host="127.0.0.1", port=http_port, log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if workload is not None:
            workload.terminate()
            workload.wait(timeout=10)
        cluster.stop()
        print("pganalytics demo: stopped the workload, the gateway and the server")
