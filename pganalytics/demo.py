"""`pganalytics demo` / `make demo`: the whole system on an embedded local server.

Starts a PostgreSQL cluster under .demo/ (no system service; when we are root and the server
user cannot enter .demo/, under its stand-in in /var/lib/pganalytics-dev/), installs the store
with Alembic, runs a light rate-limited pgbench workload against a `bench` database of the same
server, collects from it every 10 s and serves the gateway on http://127.0.0.1:8080 until
Ctrl-C, then stops everything it started.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import psycopg

from . import localpg, store
from .collector import config as collector_config
from .collector.run import collect_once

DEMO_PG_PORT = int(os.environ.get("PGANALYTICS_DEMO_PG_PORT", "54329"))
COLLECT_EVERY_S = 10
log = logging.getLogger(__name__)


def _ensure_db(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _pgbench(cluster: localpg.LocalCluster, *args: str) -> list[str]:
    return [str(cluster.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port),
            "-U", localpg.PG_USER, *args, "bench"]


def demo_datadir(directory: str) -> Path:
    """DIRECTORY/pgdata, or pgdata in DIRECTORY's stand-in when the server user cannot enter
    DIRECTORY (a checkout in /root, mode 700: see localpg.reachable_dir); says which."""
    where = localpg.reachable_dir(directory)
    if where != Path(directory).resolve():
        print(f"pganalytics demo: the {localpg.PG_USER} user cannot enter {Path(directory).resolve()}, "
              f"so the demo cluster lives in {where / 'pgdata'}", flush=True)
    return where / "pgdata"


def _check_port_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise store.StoreError(
                f"port {port} on 127.0.0.1 is taken by another program (another demo?): stop it, "
                f"or choose another port with PGANALYTICS_DEMO_PG_PORT=NNNNN") from None


def _collect_loop(store_dsn: str, stop: threading.Event) -> None:
    """Collect every COLLECT_EVERY_S until `stop`. A round that fails is reported (with its
    traceback, once per distinct error) and retried on the next round: the demo never stops
    collecting silently."""
    # The demo's target is the store's own server: the store's statements (database
    # pganalytics) and the demo's setup (postgres) stay out of its top queries and plans.
    conf = collector_config.parse({"collector": {"exclude_databases": ["pganalytics", "postgres"]}}, store_dsn)
    memories: dict = {}  # per target across rounds, as the daemon keeps: plans not to retry, ...
    last_error = None
    while not stop.is_set():
        try:
            for r in collect_once(store_dsn, config=conf, memories=memories):
                if not r.ok:
                    print(f"collector: {r.instance}: {r.error}", flush=True)
            last_error = None
        except Exception as exc:  # the demo keeps serving; the error is shown, then retried
            error = f"{type(exc).__name__}: {exc}"
            if error != last_error:
                log.exception("collection failed (retried every %s s)", COLLECT_EVERY_S)
            last_error = error
        stop.wait(COLLECT_EVERY_S)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_demo(directory: str, http_port: int) -> None:
    import uvicorn

    from .gateway.app import create_app
    from .gateway.tokens import new_token, token_digest

    # Alembic announces its plugins at INFO when first imported: only its warnings here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cluster = localpg.LocalCluster(demo_datadir(directory), DEMO_PG_PORT, localpg.find_bindir())
    cluster.init()
    if not cluster.running():
        _check_port_free(DEMO_PG_PORT)
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

        threading.Thread(target=_collect_loop, args=(store_dsn, stop), name="collector",
                         daemon=True).start()
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
