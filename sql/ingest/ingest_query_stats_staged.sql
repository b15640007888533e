-- depends: ingest/ingest_query_stats.sql
-- depends: ingest/open_staging.sql
-- One snapshot of a delivery group whose pg_stat_statements snapshots were staged together
-- (one COPY into pg_temp.stage_query_stats_many, each snapshot under its batch_no): move that
-- batch's rows into stage_query_stats and fold them in with ingest_query_stats(), so a group
-- costs one COPY instead of one per snapshot, and the calls can be pipelined.
CREATE OR REPLACE FUNCTION pganalytics.ingest_query_stats_staged(
    p_batch_no     int,
    p_instance_id  int,
    p_collected_at timestamptz,
    p_dealloc      bigint DEFAULT NULL,
    p_stats_reset  timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
BEGIN
    IF p_batch_no IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats_staged: batch_no must not be null';
    END IF;
    IF to_regclass('pg_temp.stage_query_stats_many') IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats_staged: nothing staged in this session'
            USING HINT = 'call pganalytics.open_staging() and COPY into stage_query_stats_many first';
    END IF;
    -- The staging columns by name (the table's own definition), so a column added to
    -- query_stats_stage by a later revision needs no change here.
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute
    WHERE attrelid = 'pganalytics.query_stats_stage'::regclass AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('INSERT INTO pg_temp.stage_query_stats (%1$s) '
                   'SELECT %1$s FROM pg_temp.stage_query_stats_many WHERE batch_no = $1', cols)
    USING p_batch_no;
    RETURN pganalytics.ingest_query_stats(p_instance_id, p_collected_at, p_dealloc, p_stats_reset);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_query_stats_staged(int, int, timestamptz, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_query_stats_staged(int, int, timestamptz, bigint, timestamptz) TO pganalytics_collector;
