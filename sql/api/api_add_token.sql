-- Store a new API token's SHA-256 (the token itself is generated and shown once by the CLI).
CREATE OR REPLACE FUNCTION pganalytics.api_add_token(p_name text, p_token_sha256 bytea)
RETURNS int
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pganalytics.api_tokens (name, token_sha256) VALUES (p_name, p_token_sha256)
    RETURNING token_id;
$$;
REVOKE ALL ON FUNCTION pganalytics.api_add_token(text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_add_token(text, bytea) TO pganalytics_admin;
COMMENT ON FUNCTION pganalytics.api_add_token(text, bytea) IS 'Store a new API token''s SHA-256 under a name; returns its id (admin; `pganalytics token create`)';
