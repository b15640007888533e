"""The sample frames are their own delivery ledger (unique by instance, time and layout) and
the staged frames carry their instance and time: a third less server time a frame, and no
array parameters for the collector to build.

Revision ID: 0008
Revises: 0007
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0008")


def downgrade() -> None:
    undo_schema_files("0008")
