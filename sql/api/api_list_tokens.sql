-- The gateway's tokens as an admin sees them (`pganalytics token list`): names and dates,
-- never the digests.
CREATE OR REPLACE FUNCTION pganalytics.api_list_tokens()
RETURNS TABLE (name text, created_at timestamptz, revoked_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.name, t.created_at, t.revoked_at FROM pganalytics.api_tokens t ORDER BY t.name;
$$;
REVOKE ALL ON FUNCTION pganalytics.api_list_tokens() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_list_tokens() TO pganalytics_admin;
COMMENT ON FUNCTION pganalytics.api_list_tokens() IS 'API tokens: name, created_at, revoked_at (admin)';
