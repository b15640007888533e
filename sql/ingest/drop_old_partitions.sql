-- depends: ingest/retire_partitions.sql
-- Retention by hand: drop the day partitions of raw frames (with their ledger), query
-- statistics deltas and wait-event samples that end before p_older_than ago. maintain() does
-- the same on its own from the retention.* store settings, rollups included.
CREATE OR REPLACE FUNCTION pganalytics.drop_old_partitions(p_older_than interval)
RETURNS TABLE (dropped text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 day' THEN
        RAISE EXCEPTION 'drop_old_partitions: keep at least 1 day, got %', p_older_than;
    END IF;
    RETURN QUERY
        SELECT r.dropped
        FROM unnest(ARRAY['pganalytics.sample_frames', 'pganalytics.snapshots',
                          'pganalytics.query_stat_deltas', 'pganalytics.wait_samples']::regclass[]) AS p(parent)
        CROSS JOIN LATERAL pganalytics.retire_partitions(p.parent, now() - p_older_than) AS r(dropped)
        ORDER BY 1;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.drop_old_partitions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.drop_old_partitions(interval) TO pganalytics_admin;
