"""Helpers for revisions: run the frozen run-once DDL of sql/schema/<revision>/ in name order."""
from __future__ import annotations

from importlib import resources

from alembic import op


def schema_files(revision: str) -> list[tuple[str, str]]:
    folder = resources.files("pganalytics.sql").joinpath("schema", revision)
    return [(f"sql/schema/{revision}/{f.name}", f.read_text())
            for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".sql")]


def execute(sql: str) -> None:
    with op.get_bind().connection.driver_connection.cursor() as cur:
        cur.execute(sql)


def run_schema_files(revision: str) -> None:
    for path, text in schema_files(revision):
        try:
            execute(text)
        except Exception as exc:
            raise RuntimeError(f"{path}: {exc}") from exc
