"""Query statistics: texts, cumulative counters (MERGE target), per-interval deltas,
pg_stat_statements_info state, and plans of individual executions.

Revision ID: 0002
Revises: 0001
"""
from pganalytics.migrations.ddl import execute, run_schema_files

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema_files("0002")


def downgrade() -> None:
    execute("""
        DROP TABLE pganalytics.query_executions;
        DROP TABLE pganalytics.pgss_info;
        DROP TABLE pganalytics.query_stat_deltas;
        DROP TABLE pganalytics.query_stats_stage;
        DROP TABLE pganalytics.query_stats;
        DROP TABLE pganalytics.query_texts;
    """)
