"""Reads that stay fast at 10,000 instances: the count of stored pg_stat_statements entries
per instance kept at ingest (pgss_info.query_entries) for api_instances.

Revision ID: 0006
Revises: 0005
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0006")


def downgrade() -> None:
    undo_schema_files("0006")
