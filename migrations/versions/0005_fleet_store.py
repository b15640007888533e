"""The store at fleet scale: samples as frames (one row per instance snapshot) with layouts,
rollups 1m/5m/15m/1h, per-series state, maintain() bookkeeping, store settings, the ledger
partitioned by day, and no identity columns (they block distributing on Citus).

Revision ID: 0005
Revises: 0004
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0005")


def downgrade() -> None:
    undo_schema_files("0005")
