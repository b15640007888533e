-- Retention: drop whole day partitions of samples and query_stat_deltas that end before
-- p_older_than ago (dropping a partition is instant and leaves no bloat, unlike DELETE).
-- Returns the names of the dropped partitions.
CREATE OR REPLACE FUNCTION pganalytics.drop_old_partitions(p_older_than interval)
RETURNS TABLE (dropped text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_part record;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 day' THEN
        RAISE EXCEPTION 'drop_old_partitions: keep at least 1 day, got %', p_older_than;
    END IF;
    FOR old_part IN
        SELECT c.oid::regclass::text AS name
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('pganalytics.samples'::regclass, 'pganalytics.query_stat_deltas'::regclass,
                     'pganalytics.wait_samples'::regclass)
          -- partitions are named <parent>_pYYYYMMDD and cover that UTC day
          AND c.relname ~ '_p\d{8}$'
          AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= now() - p_older_than
        ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('DROP TABLE %s', old_part.name);
        dropped := old_part.name;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.drop_old_partitions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.drop_old_partitions(interval) TO pganalytics_admin;
