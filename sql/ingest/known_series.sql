-- Every series of these instances: the collector loads them into its cache the first time a
-- store connection delivers for an instance (after a start, or a reconnection after a store
-- outage), one indexed range scan per instance instead of a series_ids() lookup per series.
CREATE OR REPLACE FUNCTION pganalytics.known_series(p_instance_ids int[])
RETURNS TABLE (instance_id int, metric text, labels jsonb, series_id int)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- plpgsql, not sql: Citus cannot plan a SQL function's parameters on a distributed table
    RETURN QUERY
    SELECT s.instance_id, s.metric, s.labels, s.series_id
    FROM pganalytics.series s
    WHERE s.instance_id = ANY (p_instance_ids);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.known_series(int[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.known_series(int[]) TO pganalytics_collector;
