"""`pganalytics install` on a server that cannot hold the store: one clear sentence, exit 2,
nothing left behind."""
from __future__ import annotations

import psycopg
import pytest

from pganalytics import cli

from .catalog import snapshot


def install_error(dsn: str, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(["install", "--dsn", dsn])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_older_than_15_is_refused(other_server, capsys):
    err = install_error(other_server("14"), capsys)
    assert "needs PostgreSQL 15 or newer, this server is 14." in err


def test_plpython_that_does_not_load_is_explained(other_server, capsys):
    # The npm build of 16 ships plpython3u's control file, but its library cannot load.
    dsn = other_server("16")
    err = install_error(dsn, capsys)
    assert "plpython3u does not load on the store server" in err
    assert "apt-get install postgresql-plpython3-16" in err
    assert snapshot(dsn)["schema"] == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'plpython3u'").fetchone()[0] == 0


def test_non_superuser_cannot_create_plpython(databases, capsys):
    dsn = databases.create()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS pga_plain")
        conn.execute("CREATE ROLE pga_plain LOGIN")
        conn.execute(f"GRANT CREATE ON DATABASE {conn.info.dbname} TO pga_plain")
    params = psycopg.conninfo.conninfo_to_dict(dsn) | {"user": "pga_plain"}
    try:
        err = install_error(psycopg.conninfo.make_conninfo(**params), capsys)
        assert "only a superuser can create it" in err
        assert snapshot(dsn)["schema"] == []
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON DATABASE {conn.info.dbname} FROM pga_plain")
            conn.execute("DROP ROLE pga_plain")


def test_unreachable_store(capsys):
    err = install_error("host=127.0.0.1 port=1 dbname=x connect_timeout=2", capsys)
    assert err.startswith("pganalytics: cannot connect to the store")
