"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
from pganalytics.migrations.ddl import run_schema_files

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    run_schema_files("${up_revision}")


def downgrade() -> None:
    ${downgrades if downgrades else "raise NotImplementedError('write the exact inverse of upgrade()')"}
