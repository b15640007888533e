"""Diagnosis sources: wait-event samples, lock chains, settings changes and the other
tables the collector fills for root-cause analysis.

Revision ID: 0003
Revises: 0002
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0003")


def downgrade() -> None:
    undo_schema_files("0003")
