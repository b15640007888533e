"""Hardening: a non-superuser owner role for every store object (and so for every SECURITY
DEFINER function), staging in owner-owned tables instead of the caller's temp tables, and
no raw INSERT on samples for the collector.

Revision ID: 0004
Revises: 0003
"""
from pganalytics.migrations.ddl import run_schema_files, undo_schema_files

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0004")


def downgrade() -> None:
    undo_schema_files("0004")
