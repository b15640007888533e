"""Anomaly detection in the store: the feature cache, anomaly events, the live detectors' state
per instance, and trained models.

Revision ID: 0009
Revises: 0008
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0009")


def downgrade() -> None:
    undo_schema_files("0009")
