-- Least-privilege group roles (NOLOGIN): grant them to real login roles.
--   pganalytics_collector: runs ingest functions and COPYs samples, reads nothing else
--   pganalytics_gateway:   reads the api_* surface only
--   pganalytics_admin:     manages instances, tokens and retention
-- Roles are cluster-wide, so they may already exist from another store database; the ones
-- created here are recorded so that downgrade drops only those.
DO $roles$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pganalytics_collector', 'pganalytics_gateway', 'pganalytics_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            INSERT INTO pganalytics.meta (key, value) VALUES ('created_role.' || r, 'yes');
        END IF;
    END LOOP;
END
$roles$;
GRANT USAGE ON SCHEMA pganalytics TO pganalytics_collector, pganalytics_gateway, pganalytics_admin;
