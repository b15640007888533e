"""One instance's statement deltas over a window without walking its whole day: an
(instance_id, collected_at) index on query_stat_deltas.

Revision ID: 0011
Revises: 0010
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0011")


def downgrade() -> None:
    undo_schema_files("0011")
