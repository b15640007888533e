"""The `pganalytics` command line. Every subcommand validates its input and exits non-zero
with one sentence on stderr saying what was wrong."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import psycopg

from . import store
from .collector.sink import BatchRefused

EPILOG = "The store is named by --dsn or PGANALYTICS_DSN (libpq DSN, URL or service=NAME)."


def _dsn(args) -> str:
    dsn = args.dsn or os.environ.get("PGANALYTICS_DSN")
    if not dsn:
        raise store.StoreError("no store given: pass --dsn or set PGANALYTICS_DSN")
    return dsn


def cmd_install(args) -> None:
    if args.distributed:
        from . import distribute

        if args.revision != "head":
            raise store.StoreError("--distributed installs to head: leave out --revision")
        with store.connect(_dsn(args)) as conn:
            distribute.check_citus(conn)  # before installing anything
    store.upgrade(_dsn(args), args.revision)
    print(f"pganalytics store at revision {store.current_revision(_dsn(args))}")
    if args.distributed:
        result = distribute.distribute(_dsn(args))
        for table, what in result.done:
            print(f"  {table}: {what}")
        if result.owner_login_on:
            print(f"  the store's owner may now log in on {', '.join(result.owner_login_on)} (Citus "
                  "connects as it): allow it only from the coordinator in their pg_hba.conf")
        print(result.summary())


def cmd_uninstall(args) -> None:
    store.downgrade(_dsn(args), "base")
    print("pganalytics store removed")


def _labels(pairs: list[str]) -> dict:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise store.StoreError(f"label {pair!r} is not KEY=VALUE")
        labels[key] = value
    return labels


def cmd_targets_add(args) -> None:
    with store.connect(_dsn(args), autocommit=True) as conn:
        iid = conn.execute("SELECT pganalytics.register_instance(%s, %s, %s)",
                           (args.name, args.conn, json.dumps(_labels(args.label)))).fetchone()[0]  # type: ignore[index]  # one row
    print(f"target {args.name} registered (instance_id {iid})")


def cmd_targets_list(args) -> None:
    with store.connect(_dsn(args)) as conn:
        for name, ref, version in conn.execute(
                "SELECT name, conn_ref, server_version_num FROM pganalytics.instances ORDER BY name"):
            print(f"{name}\t{ref}\t{version or '-'}")


def cmd_collect(args) -> None:
    from .collector import config as collector_config
    from .collector.run import collect_once

    try:
        if args.config:
            conf = collector_config.load(args.config)
        else:
            conf = collector_config.parse({}, _dsn(args))
    except collector_config.ConfigError as exc:
        raise store.StoreError(str(exc)) from None
    if not args.once:
        from .collector.daemon import Collector
        from .collector.delivery import DeliveryFailed

        collector = Collector(conf, args.config)
        collector.install_signal_handlers()
        try:
            collector.run()
        except DeliveryFailed as exc:
            raise store.StoreError(f"delivery stopped ({exc}); what was queued is in the spool, "
                                   "replayed at the next start") from None
        return
    failed = 0
    for r in collect_once(conf.store_dsn, args.target or None, config=conf):
        if r.ok:
            print(f"{r.instance}: {r.query_entries} query entries, {r.samples} samples")
            for source, reason in sorted(r.unavailable.items()):
                print(f"{r.instance}: {source} unavailable: {reason}")
        else:
            failed += 1
            print(f"{r.instance}: FAILED: {r.error}", file=sys.stderr)
    if failed:
        sys.exit(1)


def cmd_token_create(args) -> None:
    from .gateway.tokens import new_token, token_digest

    token = new_token()
    with store.connect(_dsn(args), autocommit=True) as conn:
        conn.execute("SELECT pganalytics.api_add_token(%s, %s)", (args.name, token_digest(token)))
    print(token)


def cmd_token_list(args) -> None:
    with store.connect(_dsn(args)) as conn:
        rows = conn.execute("SELECT name, created_at, revoked_at FROM pganalytics.api_list_tokens()").fetchall()
    for name, created, revoked in rows:
        state = f"revoked {revoked:%Y-%m-%d %H:%M:%S%z}" if revoked else "active"
        print(f"{name}\tcreated {created:%Y-%m-%d %H:%M:%S%z}\t{state}")


def cmd_token_revoke(args) -> None:
    with store.connect(_dsn(args), autocommit=True) as conn:
        at = conn.execute("SELECT pganalytics.api_revoke_token(%s)", (args.name,)).fetchone()[0]  # type: ignore[index]  # one row
    print(f"token {args.name} revoked ({at:%Y-%m-%d %H:%M:%S%z})")


def cmd_serve(args) -> None:
    import uvicorn

    from .gateway.app import create_app

    uvicorn.run(create_app(_dsn(args)), host=args.host, port=args.port, log_level="info")


def cmd_demo(args) -> None:
    from .demo import run_demo

    run_demo(args.dir, args.port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pganalytics", description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, epilog=EPILOG)
        sp.add_argument("--dsn", help="store DSN (default: $PGANALYTICS_DSN)")
        sp.set_defaults(func=func)
        return sp

    sp = add("install", cmd_install, "install or upgrade the store schema (Alembic)")
    sp.add_argument("--revision", default="head")
    sp.add_argument("--distributed", action="store_true",
                    help="then distribute it on Citus (the DSN names the coordinator): tables with "
                         "instance_id sharded by it, catalogs as reference tables; safe to repeat")
    add("uninstall", cmd_uninstall, "remove every object the store created")
    targets = sub.add_parser("targets", help="monitored servers").add_subparsers(dest="targets", required=True)
    for name, func, help_ in (("add", cmd_targets_add, "register a server to monitor"),
                              ("list", cmd_targets_list, "list registered servers")):
        sp = targets.add_parser(name, help=help_, epilog=EPILOG)
        sp.add_argument("--dsn")
        sp.set_defaults(func=func)
        if name == "add":
            sp.add_argument("name")
            sp.add_argument("--conn", required=True,
                            help="libpq DSN/URL without password, or a service name")
            sp.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    sp = add("collect", cmd_collect, "collect from registered targets into the store")
    sp.add_argument("--once", action="store_true", help="one cycle, then exit (for cron)")
    sp.add_argument("--config", help="TOML file (see collector/config.py); SIGHUP reloads it")
    sp.add_argument("--target", action="append", help="only this target (repeatable)")
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token", required=True)
    sp = token.add_parser("create", help="create a token and print it (shown once)")
    sp.add_argument("name")
    sp.add_argument("--dsn")
    sp.set_defaults(func=cmd_token_create)
    sp = token.add_parser("list", help="list tokens (names and dates, never the tokens)")
    sp.add_argument("--dsn")
    sp.set_defaults(func=cmd_token_list)
    sp = token.add_parser("revoke", help="revoke a token by name: the gateway refuses it at once")
    sp.add_argument("name")
    sp.add_argument("--dsn")
    sp.set_defaults(func=cmd_token_revoke)
    sp = add("serve", cmd_serve, "serve the REST/WebSocket gateway")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8080)
    sp = sub.add_parser("demo", help="run the whole system on an embedded local server")
    sp.add_argument("--dir", default=".demo", help="where the demo cluster lives")
    sp.add_argument("--port", type=int, default=8080, help="gateway port")
    sp.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic says "setup plugin ..." at INFO on import, before env.py can quiet it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (store.StoreError, LookupError, BatchRefused) as exc:
        print(f"pganalytics: {exc}", file=sys.stderr)
        sys.exit(2)
    except psycopg.Error as exc:
        print(f"pganalytics: {exc.diag.message_primary or exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
