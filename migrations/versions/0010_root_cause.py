"""Root-cause analysis: index definitions over time and hypopg-checked index advice from the
targets, users' verdicts on diagnosed causes, and the trained root-cause models.

Revision ID: 0010
Revises: 0009
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0010")


def downgrade() -> None:
    undo_schema_files("0010")
