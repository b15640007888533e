-- depends: analytics/robust_zscore.sql
-- Per query (instance, queryid; all users and databases pooled): cumulative mean and stddev,
-- the latest interval's mean against the robust baseline of earlier intervals, its share of
-- the instance's time, an anomaly flag, the reasons, and what to do about them.
--
-- is_anomalous is true when
--   * latency_regression: the latest interval's mean is > p_z_threshold robust z-scores
--     (median/MAD) above the earlier intervals in p_window AND at least 1.5x their median
--     AND practically significant (below); needs >= 5 intervals;
--   * or, while there is too little history for that, the cumulative coefficient of
--     variation exceeds 1 (stddev > mean; the seed's stddev > 0.5*mean flags every query with
--     an exponential-like latency distribution, i.e. most healthy ones), again only when
--     practically significant.
-- Practical significance: a statistically sure change can still be irrelevant (a SET going
-- from 0.009 to 0.014 ms is a 50 % "regression"), so a finding also needs
--   * an absolute size of at least p_min_change_ms (default 1 ms): the latest mean at least
--     that far above the usual one, or (instability) a stddev at least that large. Below a
--     millisecond per call a change is within one client round trip (0.1-1 ms on a LAN), no
--     user notices it and no plan or index change is worth making for it; and
--   * at least p_min_time_share_pct (default 1 %) of the instance's top-level execution time:
--     in the latest interval for a regression (it is hurting now), over p_window for
--     instability. A query below 1 % of the time cannot give back more than 1 % of the
--     server even if fixed entirely; a DBA's triage starts with the few queries above it.
-- Set either to 0 to see every statistical finding.
-- Other reasons (cache_misses, temp_spill, planning_heavy, many_rows) feed the
-- recommendation but do not by themselves make a query anomalous.
CREATE OR REPLACE FUNCTION pganalytics.analyze_query_performance(
    p_instance            text     DEFAULT NULL,
    p_window              interval DEFAULT '24 hours',
    p_min_calls           bigint   DEFAULT 10,
    p_z_threshold         float8   DEFAULT 3.5,
    p_min_change_ms       float8   DEFAULT 1.0,
    p_min_time_share_pct  float8   DEFAULT 1.0)
RETURNS TABLE (
    instance              text,
    queryid               bigint,
    query                 text,
    calls                 bigint,
    mean_ms               float8,
    stddev_ms             float8,
    intervals             int,
    latest_mean_ms        float8,
    baseline_median_ms    float8,
    robust_z              float8,
    time_share_pct        float8,
    latest_time_share_pct float8,
    is_anomalous          boolean,
    reasons               text[],
    recommendation        text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER  -- read-only; lets api roles call it without table privileges
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    iid   int;  -- the instance asked for (NULL: every instance)
    ids   int[];
    names text[];
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
    IF p_min_change_ms IS NULL OR p_min_change_ms < 0 THEN
        RAISE EXCEPTION 'analyze_query_performance: min_change_ms must be >= 0, got %', p_min_change_ms;
    END IF;
    IF p_min_time_share_pct IS NULL OR p_min_time_share_pct < 0 OR p_min_time_share_pct > 100 THEN
        RAISE EXCEPTION 'analyze_query_performance: min_time_share_pct must be from 0 to 100, got %', p_min_time_share_pct;
    END IF;
    -- The instance's id first, and the statistics filtered by it; the names as arrays: no
    -- join with instances (on Citus a reference table: joined in this query, Citus reads it
    -- over a connection to the coordinator itself, as the owner, which may not log in there).
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF p_instance IS NOT NULL AND iid IS NULL THEN
        RAISE EXCEPTION 'analyze_query_performance: unknown instance %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT array_agg(i.instance_id), array_agg(i.name) INTO ids, names
    FROM pganalytics.instances i WHERE iid IS NULL OR i.instance_id = iid;
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
        WHERE iid IS NULL OR qs.instance_id = iid
        GROUP BY qs.instance_id, qs.queryid
        HAVING sum(qs.calls) >= p_min_calls
    ), recent AS (
        -- every delta of the window, read once
        SELECT d.instance_id, d.queryid, d.collected_at, d.toplevel, d.calls, d.total_exec_time
        FROM pganalytics.query_stat_deltas d
        WHERE (iid IS NULL OR d.instance_id = iid)
          AND d.collected_at > now() - p_window
    ), instance_time AS (
        -- the instance's top-level execution time per interval (nested statements are
        -- already counted inside their callers)
        SELECT r.instance_id, r.collected_at,
               coalesce(sum(r.total_exec_time) FILTER (WHERE r.toplevel), 0) AS exec_time
        FROM recent r
        GROUP BY r.instance_id, r.collected_at
    ), instance_window AS (
        SELECT it.instance_id, sum(it.exec_time) AS exec_time
        FROM instance_time it
        GROUP BY it.instance_id
    ), per_interval AS (
        SELECT r.instance_id, r.queryid, r.collected_at,
               sum(r.total_exec_time) / sum(r.calls) AS mean_time,
               sum(r.total_exec_time) AS exec_time
        FROM recent r
        JOIN totals t USING (instance_id, queryid)
        WHERE r.calls > 0
        GROUP BY r.instance_id, r.queryid, r.collected_at
    ), history AS (
        SELECT h.instance_id, h.queryid, count(*)::int AS n,
               (array_agg(h.mean_time ORDER BY h.collected_at DESC))[1] AS latest,
               (array_agg(h.mean_time ORDER BY h.collected_at DESC))[2:] AS baseline,
               (array_agg(h.exec_time ORDER BY h.collected_at DESC))[1] AS latest_time,
               max(h.collected_at) AS latest_at,
               sum(h.exec_time) AS window_time
        FROM per_interval h
        GROUP BY h.instance_id, h.queryid
    ), scored AS (
        SELECT t.*, h.n, h.latest, h.baseline,
               t.total_time / t.calls AS mean_time,
               sqrt(greatest(t.sum_sq / t.calls - (t.total_time / t.calls) ^ 2, 0)) AS stddev_time,
               CASE WHEN cardinality(h.baseline) >= 4 THEN pganalytics.robust_zscore(h.baseline, h.latest) END AS z,
               CASE WHEN cardinality(h.baseline) >= 4 THEN
                   (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b) FROM unnest(h.baseline) b) END AS median,
               coalesce(100.0 * h.window_time / nullif(iw.exec_time, 0), 0) AS share,
               coalesce(100.0 * h.latest_time / nullif(it.exec_time, 0), 0) AS latest_share
        FROM totals t
        LEFT JOIN history h USING (instance_id, queryid)
        LEFT JOIN instance_window iw ON iw.instance_id = t.instance_id
        LEFT JOIN instance_time it ON it.instance_id = t.instance_id AND it.collected_at = h.latest_at
    ), flagged AS (
        SELECT s.*,
               array_remove(ARRAY[
                   CASE WHEN s.z > p_z_threshold AND s.latest >= 1.5 * s.median
                             AND s.latest - s.median >= p_min_change_ms
                             AND s.latest_share >= p_min_time_share_pct THEN 'latency_regression' END,
                   CASE WHEN s.stddev_time > 0.5 * s.mean_time
                             AND s.stddev_time >= p_min_change_ms
                             AND s.share >= p_min_time_share_pct THEN 'unstable_latency' END,
                   CASE WHEN s.read > 1000 AND s.read > 0.1 * (s.hit + s.read) THEN 'cache_misses' END,
                   CASE WHEN s.temp_written > 0 THEN 'temp_spill' END,
                   CASE WHEN s.plan_time > 0.3 * s.total_time AND s.plan_time > 0 THEN 'planning_heavy' END,
                   CASE WHEN s.nrows / s.calls > 10000 THEN 'many_rows' END], NULL) AS why,
               coalesce(cardinality(s.baseline), 0) < 4
                   AND s.stddev_time > s.mean_time
                   AND s.stddev_time >= p_min_change_ms
                   AND s.share >= p_min_time_share_pct AS too_erratic
        FROM scored s
    )
    SELECT i.name, f.queryid, qt.query, f.calls,
           f.mean_time, f.stddev_time, coalesce(f.n, 0), f.latest, f.median, f.z,
           f.share, f.latest_share,
           ('latency_regression' = ANY (f.why)) OR f.too_erratic,
           f.why,
           coalesce(nullif(array_to_string(ARRAY(
               SELECT CASE r
                   WHEN 'latency_regression' THEN pg_catalog.format(
                       'Latest interval averaged %s ms against a usual %s ms (%s%% of the instance''s time): compare its current plan with earlier ones (query_executions) and check lock waits and I/O in that interval.',
                       round(f.latest::numeric, 3), round(f.median::numeric, 3), round(f.latest_share::numeric, 1))
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
    JOIN unnest(ids, names) AS i(instance_id, name) ON i.instance_id = f.instance_id
    LEFT JOIN pganalytics.query_texts qt ON qt.instance_id = f.instance_id AND qt.queryid = f.queryid
    ORDER BY (('latency_regression' = ANY (f.why)) OR f.too_erratic) DESC, f.total_time DESC, f.queryid;
END
$$;
COMMENT ON FUNCTION pganalytics.analyze_query_performance(text, interval, bigint, float8, float8, float8) IS
    'Per-query anomaly flags (robust z-score of the latest interval, gated by practical significance: '
    'p_min_change_ms and p_min_time_share_pct), reasons and recommendations; served through api_query_analysis.';
-- Functions are executable by PUBLIC unless revoked (per-schema default privileges cannot revoke it).
-- The gateway reaches it only through api_query_analysis.
REVOKE ALL ON FUNCTION pganalytics.analyze_query_performance(text, interval, bigint, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.analyze_query_performance(text, interval, bigint, float8, float8, float8) TO pganalytics_admin;
