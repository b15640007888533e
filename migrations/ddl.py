"""Helpers for revisions: run the frozen run-once DDL of sql/schema/<revision>/ in name order.

From revision 0003 on, each run-once file states its own inverse in `-- downgrade:` lines
(e.g. `-- downgrade: DROP TABLE pganalytics.wait_samples;`); undo_schema_files() runs them
in reverse file order, so a revision's downgrade cannot forget an object.

Each file (and each downgrade line) is sent one statement at a time: on a distributed store
(Citus) the coordinator forwards some DDL to the workers as the text it was given, inside a
prepared statement, which refuses a string of several commands ("cannot insert multiple
commands into a prepared statement"). split_statements() cuts at the semicolons outside
quotes, quoted identifiers, comments and dollar-quoted bodies.
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


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


def split_statements(sql: str) -> list[str]:
    """The statements of a PostgreSQL script, each without its final semicolon; a piece that
    holds only comments and blanks is left out."""
    out: list[str] = []
    start = i = 0
    n = len(sql)
    meaningful = False  # the current piece has something besides comments and blanks

    def close(end: int) -> None:
        nonlocal start, meaningful
        if meaningful:
            out.append(sql[start:end].strip())
        start, meaningful = end + 1, False

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2  # PostgreSQL's block comments nest
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if c == ";":
            close(i)
            i += 1
            continue
        if not c.isspace():
            meaningful = True
        if c == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i += 1
            while i < n:
                if backslash and sql[i] == "\\":
                    i += 2
                elif sql[i] == "'":
                    if sql.startswith("''", i):
                        i += 2
                    else:
                        break
                else:
                    i += 1
            i += 1
            continue
        if c == '"':
            j = i + 1
            while True:
                j = sql.find('"', j)
                if j < 0 or not sql.startswith('""', j):
                    break
                j += 2
            i = n if j < 0 else j + 1
            continue
        if c == "$" and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                j = sql.find(m.group(), m.end())
                i = n if j < 0 else j + len(m.group())
                continue
        i += 1
    close(n)
    return out


def execute(sql: str) -> None:
    with driver_connection().cursor() as cur:
        for statement in split_statements(sql):
            cur.execute(statement)


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
