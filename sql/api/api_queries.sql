-- Top queries of one instance by total execution time, as /api/v2/queries serves them.
CREATE OR REPLACE FUNCTION pganalytics.api_queries(p_instance text, p_limit int DEFAULT 50)
RETURNS TABLE (
    queryid          bigint,
    query            text,
    calls            bigint,
    total_exec_ms    float8,
    mean_exec_ms     float8,
    stddev_exec_ms   float8,
    rows             bigint,
    shared_blks_hit  bigint,
    shared_blks_read bigint,
    temp_blks_written bigint,
    last_collected_at timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_instance_id int;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'api_queries: limit must be between 1 and 1000, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.instance_id INTO v_instance_id FROM pganalytics.instances i WHERE i.name = p_instance;
    IF v_instance_id IS NULL THEN
        RAISE EXCEPTION 'api_queries: unknown instance %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT q.queryid, t.query, sum(q.calls)::bigint, sum(q.total_exec_time),
           sum(q.total_exec_time) / nullif(sum(q.calls), 0),
           sqrt(greatest(sum(q.calls * (q.stddev_exec_time ^ 2 + q.mean_exec_time ^ 2)) / nullif(sum(q.calls), 0)
                         - (sum(q.total_exec_time) / nullif(sum(q.calls), 0)) ^ 2, 0)),
           sum(q.rows)::bigint, sum(q.shared_blks_hit)::bigint, sum(q.shared_blks_read)::bigint,
           sum(q.temp_blks_written)::bigint, max(q.collected_at)
    FROM pganalytics.query_stats q
    LEFT JOIN pganalytics.query_texts t ON t.instance_id = q.instance_id AND t.queryid = q.queryid
    WHERE q.instance_id = v_instance_id
    GROUP BY q.queryid, t.query
    ORDER BY 4 DESC
    LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.api_queries(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_queries(text, int) TO pganalytics_gateway, pganalytics_admin;
