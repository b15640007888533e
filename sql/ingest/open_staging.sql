-- Create this session's temp staging tables (once per connection). Rows vanish at commit,
-- so staging never bloats and never leaks between batches.
CREATE OR REPLACE FUNCTION pganalytics.open_staging()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS stage_query_stats
        (LIKE pganalytics.query_stats_stage INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
    -- Many pg_stat_statements snapshots at once (grouped delivery: one COPY for the group;
    -- pganalytics.ingest_query_stats_staged() moves one batch_no at a time into
    -- stage_query_stats). The index spares each call a scan of the whole group.
    CREATE TEMP TABLE IF NOT EXISTS stage_query_stats_many
        (LIKE pganalytics.query_stats_stage INCLUDING DEFAULTS, batch_no int NOT NULL) ON COMMIT DELETE ROWS;
    CREATE INDEX IF NOT EXISTS stage_query_stats_many_batch_no ON stage_query_stats_many (batch_no);
    -- The samples of many batches at once (pganalytics.ingest_samples() names each batch by
    -- its batch_no and consumes the rows).
    CREATE TEMP TABLE IF NOT EXISTS stage_samples (
        batch_no  int    NOT NULL,
        series_id int    NOT NULL,
        value     float8 NOT NULL
    ) ON COMMIT DELETE ROWS;
END
$$;
-- Functions are executable by PUBLIC unless revoked (per-schema default privileges cannot revoke it).
REVOKE ALL ON FUNCTION pganalytics.open_staging() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.open_staging() TO pganalytics_collector;
