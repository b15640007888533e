"""Install, upgrade and uninstall the store schema (Alembic), with plain-language pre-checks."""
from __future__ import annotations

from importlib import resources

import psycopg

MIN_SERVER_VERSION = 150000


class StoreError(Exception):
    """A problem with the store that the user must fix; str() is one actionable sentence."""


def connect(dsn: str, **kw) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kw)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        raise StoreError(f"cannot connect to the store ({reason}): check that the server is "
                         "running and the DSN's host, port, user and dbname are right") from exc


def precheck(dsn: str) -> int:
    """Fail with one clear sentence if this server cannot hold the store; return its version."""
    with connect(dsn) as conn:
        version = conn.info.server_version
        major = version // 10000
        if version < MIN_SERVER_VERSION:
            raise StoreError(
                f"the store needs PostgreSQL 15 or newer, this server is "
                f"{major}.{version % 100}: install into a 15+ server")
        row = conn.execute(
            "SELECT installed_version IS NOT NULL, "
            "       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
            "FROM pg_available_extensions WHERE name = 'plpython3u'").fetchone()
        package = f"postgresql-plpython3-{major} python3-numpy"
        if row is None:
            raise StoreError(f"the store server has no plpython3u: install it on the database "
                             f"host (Debian: apt-get install {package})")
        installed, superuser = row
        if not installed and not superuser:
            raise StoreError("plpython3u is available but not created, and only a superuser can "
                             "create it: run CREATE EXTENSION plpython3u as a superuser, or "
                             "install as one")
        _try_plpython(conn, installed, package)
    return version


def _try_plpython(conn: psycopg.Connection, installed: bool, package: str) -> None:
    """Load PL/Python and numpy for real, in a transaction that is rolled back."""
    try:
        with conn.transaction(force_rollback=True):
            if not installed:
                conn.execute("CREATE EXTENSION plpython3u")
            conn.execute("DO $$ import numpy $$ LANGUAGE plpython3u")
    except psycopg.Error as exc:
        detail = exc.diag.message_primary or str(exc)
        if "numpy" in detail:
            raise StoreError("the store server's Python cannot import numpy: install it on the "
                             "database host (Debian: apt-get install python3-numpy)") from exc
        raise StoreError(f"plpython3u does not load on the store server ({detail}): install the "
                         f"distribution's PL/Python (Debian: apt-get install {package})") from exc


def alembic_config(dsn: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("pganalytics.migrations")))
    cfg.attributes["dsn"] = dsn
    return cfg


def head_revision() -> str:
    """The newest revision this code knows (what `install` brings a store to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None  # migrations/versions is never empty
    return head


def upgrade(dsn: str, revision: str = "head") -> None:
    from alembic import command

    precheck(dsn)
    try:
        command.upgrade(alembic_config(dsn), revision)
    except psycopg.Error as exc:
        raise StoreError(f"install failed and was rolled back: {exc}") from exc


def downgrade(dsn: str, revision: str = "base") -> None:
    from alembic import command

    with connect(dsn):
        pass
    command.downgrade(alembic_config(dsn), revision)


def current_revision(dsn: str) -> str | None:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return None
        row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
        return row[0] if row else None
