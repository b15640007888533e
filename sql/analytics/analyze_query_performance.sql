-- depends: analytics/robust_zscore.sql
-- Per query (instance, queryid; all users and databases pooled): cumulative mean and stddev,
-- the latest interval's mean against the robust baseline of earlier intervals, an anomaly
-- flag, the reasons, and what to do about them.
--
-- is_anomalous is true when
--   * latency_regression: the latest interval's mean is > p_z_threshold robust z-scores
--     (median/MAD) above the earlier intervals in p_window AND at least 1.5x their median
--     (a large z on a sub-microsecond baseline is not worth a page); needs >= 5 intervals;
--   * or, while there is too little history for that, the cumulative coefficient of
--     variation exceeds 1 (stddev > mean; the seed's stddev > 0.5*mean flags every query with
--     an exponential-like latency distribution, i.e. most healthy ones).
-- Other reasons (unstable_latency, cache_misses, temp_spill, planning_heavy, many_rows) feed
-- the recommendation but do not by themselves make a query anomalous.
CREATE OR REPLACE FUNCTION pganalytics.analyze_query_performance(
    p_instance    text     DEFAULT NULL,
    p_window      interval DEFAULT '24 hours',
    p_min_calls   bigint   DEFAULT 10,
    p_z_threshold float8   DEFAULT 3.5)
RETURNS TABLE (
    instance           text,
    queryid            bigint,
    query              text,
    calls              bigint,
    mean_ms            float8,
    stddev_ms          float8,
    intervals          int,
    latest_mean_ms     float8,
    baseline_median_ms float8,
    robust_z           float8,
    is_anomalous       boolean,
    reasons            text[],
    recommendation     text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER  -- read-only; lets api roles call it without table privileges
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_window IS NULL OR p_window <= interval '0' THEN
        RAISE EXCEPTION 'analyze_query_performance: window must be a positive interval, got %', p_window;
    END IF;
    IF p_min_calls IS NULL OR p_min_calls < 1 THEN
        RAISE EXCEPTION 'analyze_query_performance: min_calls must be >= 1, got %', p_min_calls;
    END IF;
    IF p_z_threshold IS NULL OR p_z_threshold <= 0 THEN
        RAISE EXCEPTION 'analyze_query_performance: z_threshold must be > 0, got %', p_z_threshold;
    END IF;
    IF p_instance IS NOT NULL AND NOT EXISTS (SELECT FROM pganalytics.instances i WHERE i.name = p_instance) THEN
        RAISE EXCEPTION 'analyze_query_performance: unknown instance %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH totals AS (
        SELECT qs.instance_id, qs.queryid,
               sum(qs.calls)::bigint AS calls,
               sum(qs.total_exec_time) AS total_time,
               sum(qs.calls * (qs.stddev_exec_time ^ 2 + qs.mean_exec_time ^ 2)) AS sum_sq,
               sum(qs.shared_blks_hit) AS hit, sum(qs.shared_blks_read) AS read,
               sum(qs.temp_blks_written) AS temp_written, sum(qs.rows) AS nrows,
               sum(qs.total_plan_time) AS plan_time, max(qs.max_exec_time) AS max_time
        FROM pganalytics.query_stats qs
        JOIN pganalytics.instances i USING (instance_id)
        WHERE p_instance IS NULL OR i.name = p_instance
        GROUP BY qs.instance_id, qs.queryid
        HAVING sum(qs.calls) >= p_min_calls
    ), per_interval AS (
        SELECT d.instance_id, d.queryid, d.collected_at,
               sum(d.total_exec_time) / sum(d.calls) AS mean_time
        FROM pganalytics.query_stat_deltas d
        JOIN totals t USING (instance_id, queryid)
        WHERE d.collected_at > now() - p_window AND d.calls > 0
        GROUP BY d.instance_id, d.queryid, d.collected_at
    ), history AS (
        SELECT h.instance_id, h.queryid, count(*)::int AS n,
               (array_agg(h.mean_time ORDER BY h.collected_at DESC))[1] AS latest,
               (array_agg(h.mean_time ORDER BY h.collected_at DESC))[2:] AS baseline
        FROM per_interval h
        GROUP BY h.instance_id, h.queryid
    ), scored AS (
        SELECT t.*, h.n, h.latest, h.baseline,
               t.total_time / t.calls AS mean_time,
               sqrt(greatest(t.sum_sq / t.calls - (t.total_time / t.calls) ^ 2, 0)) AS stddev_time,
               CASE WHEN cardinality(h.baseline) >= 4 THEN pganalytics.robust_zscore(h.baseline, h.latest) END AS z,
               CASE WHEN cardinality(h.baseline) >= 4 THEN
                   (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b) FROM unnest(h.baseline) b) END AS median
        FROM totals t
        LEFT JOIN history h USING (instance_id, queryid)
    ), flagged AS (
        SELECT s.*,
               array_remove(ARRAY[
                   CASE WHEN s.z > p_z_threshold AND s.latest >= 1.5 * s.median THEN 'latency_regression' END,
                   CASE WHEN s.stddev_time > 0.5 * s.mean_time THEN 'unstable_latency' END,
                   CASE WHEN s.read > 1000 AND s.read > 0.1 * (s.hit + s.read) THEN 'cache_misses' END,
                   CASE WHEN s.temp_written > 0 THEN 'temp_spill' END,
                   CASE WHEN s.plan_time > 0.3 * s.total_time AND s.plan_time > 0 THEN 'planning_heavy' END,
                   CASE WHEN s.nrows / s.calls > 10000 THEN 'many_rows' END], NULL) AS why
        FROM scored s
    )
    SELECT i.name, f.queryid, qt.query, f.calls,
           f.mean_time, f.stddev_time, coalesce(f.n, 0), f.latest, f.median, f.z,
           ('latency_regression' = ANY (f.why))
             OR (coalesce(cardinality(f.baseline), 0) < 4 AND f.stddev_time > f.mean_time),
           f.why,
           coalesce(nullif(array_to_string(ARRAY(
               SELECT CASE r
                   WHEN 'latency_regression' THEN pg_catalog.format(
                       'Latest interval averaged %s ms against a usual %s ms: compare its current plan with earlier ones (query_executions) and check lock waits and I/O in that interval.',
                       round(f.latest::numeric, 3), round(f.median::numeric, 3))
                   WHEN 'unstable_latency' THEN
                       'Latency varies widely (stddev > half the mean): look for parameter values that need a different plan (generic vs custom plans), lock contention or cold cache.'
                   WHEN 'cache_misses' THEN pg_catalog.format(
                       '%s%% of its blocks come from outside shared_buffers: add an index to read fewer pages, or give shared_buffers more memory if the working set should fit.',
                       round((100.0 * f.read / (f.hit + f.read))::numeric, 1))
                   WHEN 'temp_spill' THEN
                       'Sorts or hashes spill to temporary files: raise work_mem for this query''s role/session, or add an index that returns rows already ordered.'
                   WHEN 'planning_heavy' THEN
                       'Planning takes a large share of its time: use a prepared statement (plan cache) or simplify the query (fewer joins/partitions to plan).'
                   WHEN 'many_rows' THEN
                       'Returns over 10,000 rows per call: paginate, aggregate in the database, or select fewer columns.'
               END
               FROM unnest(f.why) AS r), ' '), ''), 'No problem found.')
    FROM flagged f
    JOIN pganalytics.instances i ON i.instance_id = f.instance_id
    LEFT JOIN pganalytics.query_texts qt ON qt.instance_id = f.instance_id AND qt.queryid = f.queryid
    ORDER BY 11 DESC, f.total_time DESC;
END
$$;
-- Functions are executable by PUBLIC unless revoked (per-schema default privileges cannot revoke it).
REVOKE ALL ON FUNCTION pganalytics.analyze_query_performance(text, interval, bigint, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.analyze_query_performance(text, interval, bigint, float8) TO pganalytics_gateway, pganalytics_admin;
