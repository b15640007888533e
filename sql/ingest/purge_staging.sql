-- Remove staged rows that no ingest call will ever read: those of transactions that ended
-- without calling one (a client that COPYs and commits). Rows of running transactions, this
-- one included, are kept. The collector calls it once per store connection; cheap when there
-- is nothing to remove (an index range scan). Returns the rows removed.
CREATE OR REPLACE FUNCTION pganalytics.purge_staging()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    n1      bigint;
    n2      bigint;
BEGIN
    DELETE FROM pganalytics.sample_frames_stage WHERE stage_xid < horizon;
    GET DIAGNOSTICS n1 = ROW_COUNT;
    DELETE FROM pganalytics.query_stats_stage WHERE stage_xid < horizon;
    GET DIAGNOSTICS n2 = ROW_COUNT;
    RETURN n1 + n2;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.purge_staging() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.purge_staging() TO pganalytics_collector, pganalytics_admin;
