"""Alembic environment: the whole upgrade or downgrade runs in ONE transaction, so a failure
leaves nothing half-installed. Replaceable objects (sql/{ingest,analytics,api}) are applied
once head is reached and dropped when moving below it (see pganalytics.replaceable); at head,
every object of the schema is given to the pganalytics_owner role."""
from __future__ import annotations

import logging
import os
from logging.config import fileConfig

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from pganalytics import replaceable

config = context.config
# Only Alembic's warnings: its INFO lines ("Context impl ...", "Running upgrade ...") come on
# every run and say nothing our own output does not. Plain `alembic` from the checkout takes
# the levels of alembic.ini; a caller that set Alembic's level itself keeps it.
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
elif logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)
NO_MOVE = object()  # the command moves no revision (base is None, so None cannot mean this)


def _dsn() -> str:
    dsn = config.attributes.get("dsn") or os.environ.get("PGANALYTICS_DSN")
    if not dsn:
        url = config.get_main_option("sqlalchemy.url")
        if url and not url.startswith("driver://"):
            return url
        raise SystemExit("no store given: set PGANALYTICS_DSN or use `pganalytics install --dsn DSN`")
    return dsn


def run_migrations_online() -> None:
    dsn = _dsn()
    engine = create_engine("postgresql+psycopg://", poolclass=pool.NullPool,
                           creator=lambda: psycopg.connect(dsn))
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=False,
                          version_table="alembic_version", version_table_schema="public")
        with context.begin_transaction():
            raw = connection.connection.driver_connection
            assert raw is not None  # the connection a migration runs on is open
            script = context.script
            heads = set(script.get_heads())
            target: object
            try:
                target = context.get_revision_argument()
            except KeyError:  # `alembic current` and friends move nothing
                target = NO_MOVE
            target_is_head = target in ("head", "heads") or (
                isinstance(target, str) and target in heads)
            with raw.cursor() as cur:
                # Serialise concurrent installers on the same database.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('pganalytics.install'))")
                # Unqualified names in the run-once DDL (operators in CHECKs, now() in
                # defaults) resolve in pg_catalog only, never in a schema someone else can
                # write to (what scripts/pgspot-check assumes).
                cur.execute("SET LOCAL search_path TO pg_catalog, pg_temp")
                # Replaceable objects exist only at head: moving below it drops them (refused
                # when a user's object depends on them); an upgrade to head replaces them in
                # place, keeping OIDs, grants and users' dependent objects.
                if target is not NO_MOVE and not target_is_head:
                    replaceable.drop_all(cur)
            context.run_migrations()
            if set(context.get_context().get_current_heads()) == heads:
                with raw.cursor() as cur:
                    replaceable.apply_all(cur)
                    replaceable.set_ownership(cur)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: replaceable objects are applied "
                     "from sql/ at upgrade time against a live server")
run_migrations_online()
