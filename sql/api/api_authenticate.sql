-- The gateway's token check: returns the token's name when the SHA-256 digest matches a token
-- that is not revoked, NULL otherwise. The gateway sends only the digest, so a raw token can
-- never reach the server log (log_statement, slow-query parameter logging).
CREATE OR REPLACE FUNCTION pganalytics.api_authenticate(p_token_sha256 bytea)
RETURNS text
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT name FROM pganalytics.api_tokens
    WHERE token_sha256 = p_token_sha256 AND revoked_at IS NULL;
$$;
REVOKE ALL ON FUNCTION pganalytics.api_authenticate(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_authenticate(bytea) TO pganalytics_gateway;
COMMENT ON FUNCTION pganalytics.api_authenticate(bytea) IS 'The name of the active token with this SHA-256 digest, or NULL (the gateway''s bearer-token check)';
