-- The gateway's token check: returns the token's name when the token is valid and not
-- revoked, NULL otherwise. Only SHA-256 digests are stored; the gateway never sees them.
CREATE OR REPLACE FUNCTION pganalytics.api_authenticate(p_token text)
RETURNS text
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT name FROM pganalytics.api_tokens
    WHERE token_sha256 = sha256(convert_to(p_token, 'UTF8')) AND revoked_at IS NULL;
$$;
REVOKE ALL ON FUNCTION pganalytics.api_authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_authenticate(text) TO pganalytics_gateway;
