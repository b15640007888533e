-- The installed Alembic revision, for /health: api roles cannot read public.alembic_version.
CREATE OR REPLACE FUNCTION pganalytics.api_schema_revision()
RETURNS text
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT version_num::text FROM public.alembic_version LIMIT 1;
$$;
REVOKE ALL ON FUNCTION pganalytics.api_schema_revision() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_schema_revision() TO pganalytics_gateway, pganalytics_admin;
COMMENT ON FUNCTION pganalytics.api_schema_revision() IS 'The installed Alembic revision of the store (for /health)';
