"""The series state as one row per instance (series_state_blocks, float8 fields as bytes), folded
by numpy in maintain(): a row per series cost half of maintain()'s time at fleet scale.

Revision ID: 0007
Revises: 0006
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0007")


def downgrade() -> None:
    undo_schema_files("0007")
