"""Core store: schema, roles, instances, databases, series, samples, snapshot ledger, tokens.

Revision ID: 0001
Revises:
"""
import re

from alembic import op

from pganalytics.migrations.ddl import execute, run_schema_files

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

def upgrade() -> None:
    run_schema_files("0001")
    # PL/Python (untrusted) needs a superuser to create; remember whether we did, so that
    # downgrade removes only what upgrade added.
    execute("""
        DO $ext$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'plpython3u') THEN
                CREATE EXTENSION plpython3u;
                INSERT INTO pganalytics.meta VALUES ('created_extension.plpython3u', 'yes');
            END IF;
        END
        $ext$;
        DO $numpy$
        try:
            import numpy
        except ImportError as exc:
            plpy.error("the store server's Python cannot import numpy (%s): install it on the "
                       "database host (Debian: apt-get install python3-numpy)" % exc)
        $numpy$ LANGUAGE plpython3u;
    """)


def downgrade() -> None:
    with op.get_bind().connection.driver_connection.cursor() as cur:
        cur.execute("SELECT substr(key, 14) FROM pganalytics.meta WHERE key LIKE 'created_role.%'")
        created_roles = [r[0] for r in cur.fetchall() if re.fullmatch(r"pganalytics_[a-z]+", r[0])]
    execute("""
        DO $ext$
        BEGIN
            IF EXISTS (SELECT FROM pganalytics.meta WHERE key = 'created_extension.plpython3u') THEN
                DROP EXTENSION IF EXISTS plpython3u;
            END IF;
        END
        $ext$;
        DROP SCHEMA pganalytics CASCADE;
    """)
    # Roles are cluster-wide: drop the ones upgrade created, unless another database uses them.
    for role in created_roles:
        execute(f"""
            DO $role$
            BEGIN
                DROP ROLE IF EXISTS {role};
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'role {role} kept: still used elsewhere in this cluster';
            END
            $role$;
        """)
