"""Helpers for revisions: run the frozen run-once DDL of sql/schema/<revision>/ in name order.

From revision 0003 on, each run-once file states its own inverse in `-- downgrade:` lines
(e.g. `-- downgrade: DROP TABLE pganalytics.wait_samples;`); undo_schema_files() runs them
in reverse file order, so a revision's downgrade cannot forget an object.
"""
from __future__ import annotations

import re
from importlib import resources
from typing import Any

from alembic import op


def schema_files(revision: str) -> list[tuple[str, str]]:
    folder = resources.files("pganalytics.sql").joinpath("schema", revision)
    return [(f"sql/schema/{revision}/{f.name}", f.read_text())
            for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".sql")]


def driver_connection() -> Any:
    """The psycopg connection under Alembic's (which SQLAlchemy types as Optional)."""
    conn = op.get_bind().connection.driver_connection
    assert conn is not None  # the connection a migration runs on is open
    return conn


def execute(sql: str) -> None:
    with driver_connection().cursor() as cur:
        cur.execute(sql)


def run_schema_files(revision: str) -> None:
    for path, text in schema_files(revision):
        try:
            execute(text)
        except Exception as exc:
            raise RuntimeError(f"{path}: {exc}") from exc


_DOWNGRADE = re.compile(r"^--\s*downgrade:\s*(.+)$", re.M)


def undo_schema_files(revision: str) -> None:
    for path, text in reversed(schema_files(revision)):
        statements = _DOWNGRADE.findall(text)
        if not statements:
            raise RuntimeError(f"{path} has no '-- downgrade:' line")
        for statement in statements:
            execute(statement)
