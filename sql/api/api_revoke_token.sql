-- Revoke a gateway token by name (`pganalytics token revoke NAME`): the gateway refuses it
-- once its cache of valid tokens expires (gateway/auth.py: ttl seconds; api_authenticate
-- checks revoked_at). The row stays, so the name
-- is not reused by mistake and `token list` shows when it was revoked. Returns the time of
-- revocation (the earlier one when it was already revoked).
CREATE OR REPLACE FUNCTION pganalytics.api_revoke_token(p_name text)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_at timestamptz;
    v_now timestamptz := now();  -- a value: Citus refuses now() inside coalesce() in an UPDATE of a reference table
BEGIN
    UPDATE pganalytics.api_tokens t SET revoked_at = coalesce(t.revoked_at, v_now)
    WHERE t.name = p_name
    RETURNING t.revoked_at INTO v_at;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'api_revoke_token: no token named %', pg_catalog.quote_nullable(p_name)
            USING ERRCODE = 'no_data_found', HINT = 'pganalytics token list shows the names';
    END IF;
    RETURN v_at;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.api_revoke_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_revoke_token(text) TO pganalytics_admin;
COMMENT ON FUNCTION pganalytics.api_revoke_token(text) IS 'Revoke an API token by name (admin)';
