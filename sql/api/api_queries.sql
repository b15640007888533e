-- Top queries of one instance by what they did in a time window, as /api/v2/queries serves
-- them: computed from the per-interval deltas (query_stat_deltas), not from the all-time
-- counters, so a bootstrap `CREATE DATABASE` or a bulk load of last month does not outrank
-- today's workload. An interval counts when it ENDS in (p_from, p_to] (collected_at is its
-- end). Entries are pooled per queryid over databases, users and nesting levels.
-- stddev is exact over the window: each delta carries its interval's sum of squares.
-- time_share_pct is the query's share of the instance's top-level execution time in the
-- window (nested statements are already inside their caller's time, so they are left out of
-- the denominator, not of the numerator).
CREATE OR REPLACE FUNCTION pganalytics.api_queries(
    p_instance text,
    p_limit    int         DEFAULT 50,
    p_from     timestamptz DEFAULT pg_catalog.now() - interval '1 hour',
    p_to       timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (
    queryid            bigint,
    query              text,
    calls              bigint,
    total_exec_ms      float8,
    mean_exec_ms       float8,
    stddev_exec_ms     float8,
    total_plan_ms      float8,
    rows               bigint,
    shared_blks_hit    bigint,
    shared_blks_read   bigint,
    temp_blks_written  bigint,
    time_share_pct     float8,
    intervals          int,
    last_collected_at  timestamptz,
    window_from        timestamptz,
    window_to          timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the longest window one call may scan (the gateway enforces the same): a month of
    -- deltas is already ~260k rows per query polled every 10 s
    c_max_window CONSTANT interval := interval '31 days';
    v_instance_id int;
    -- NULL means the default, so callers can pass one bound only
    v_to   timestamptz := coalesce(p_to, pg_catalog.now());
    v_from timestamptz := coalesce(p_from, coalesce(p_to, pg_catalog.now()) - interval '1 hour');
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'api_queries: limit must be between 1 and 1000, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_from >= v_to THEN
        RAISE EXCEPTION 'api_queries: the window must start before it ends, got % to %', v_from, v_to
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to - v_from > c_max_window THEN
        RAISE EXCEPTION 'api_queries: the window may be at most %, got %', c_max_window, v_to - v_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.instance_id INTO v_instance_id FROM pganalytics.instances i WHERE i.name = p_instance;
    IF v_instance_id IS NULL THEN
        RAISE EXCEPTION 'api_queries: unknown instance %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH per_query AS (
        SELECT d.queryid,
               sum(d.calls)::bigint AS calls,
               sum(d.total_exec_time) AS exec_time,
               sum(d.exec_time_sq) AS exec_sq,
               sum(d.total_plan_time) AS plan_time,
               sum(d.rows)::bigint AS nrows,
               sum(d.shared_blks_hit)::bigint AS hit,
               sum(d.shared_blks_read)::bigint AS read,
               sum(d.temp_blks_written)::bigint AS temp_written,
               count(DISTINCT d.collected_at)::int AS n_intervals,
               max(d.collected_at) AS last_at,
               sum(d.total_exec_time) FILTER (WHERE d.toplevel) AS toplevel_time
        FROM pganalytics.query_stat_deltas d
        WHERE d.instance_id = v_instance_id
          AND d.collected_at > v_from AND d.collected_at <= v_to
        GROUP BY d.queryid
        HAVING sum(d.calls) > 0
    ), ranked AS (
        SELECT pq.*, sum(pq.toplevel_time) OVER () AS instance_time
        FROM per_query pq
    )
    SELECT r.queryid, t.query, r.calls, r.exec_time,
           r.exec_time / r.calls,
           -- population stddev from the pooled sum of squares (rounding can go below 0)
           sqrt(greatest(r.exec_sq / r.calls - (r.exec_time / r.calls) ^ 2, 0)),
           r.plan_time, r.nrows, r.hit, r.read, r.temp_written,
           100.0 * r.exec_time / nullif(r.instance_time, 0),
           r.n_intervals, r.last_at, v_from, v_to
    FROM ranked r
    LEFT JOIN pganalytics.query_texts t ON t.instance_id = v_instance_id AND t.queryid = r.queryid
    ORDER BY r.exec_time DESC, r.queryid
    LIMIT p_limit;
END
$$;
COMMENT ON FUNCTION pganalytics.api_queries(text, int, timestamptz, timestamptz) IS
    'API (GET /api/v2/queries): top queries of instance p_instance by execution time in the window (p_from, p_to] '
    '(default the last hour, at most 31 days), from per-interval deltas: calls, total/mean/stddev ms, rows, blocks, '
    'share of the instance''s top-level time.';
REVOKE ALL ON FUNCTION pganalytics.api_queries(text, int, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_queries(text, int, timestamptz, timestamptz) TO pganalytics_gateway, pganalytics_admin;
