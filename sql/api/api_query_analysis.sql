-- depends: analytics/analyze_query_performance.sql
-- The api surface over analyze_query_performance(): what /api/v2/queries/analysis serves.
-- The gateway role may call api_* objects only, so analytics can change shape behind this
-- wrapper; an instance is required (the analysis of every instance at once is for admins).
CREATE OR REPLACE FUNCTION pganalytics.api_query_analysis(
    p_instance            text,
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
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_instance IS NULL THEN
        RAISE EXCEPTION 'api_query_analysis: an instance name is required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pganalytics.instances i WHERE i.name = p_instance) THEN
        RAISE EXCEPTION 'api_query_analysis: unknown instance %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT * FROM pganalytics.analyze_query_performance(
        p_instance, p_window, p_min_calls, p_z_threshold, p_min_change_ms, p_min_time_share_pct);
END
$$;
COMMENT ON FUNCTION pganalytics.api_query_analysis(text, interval, bigint, float8, float8, float8) IS
    'API (GET /api/v2/queries/analysis): analyze_query_performance() for one instance: per-query latency '
    'regressions and instability that are statistically and practically significant, reasons, recommendations.';
REVOKE ALL ON FUNCTION pganalytics.api_query_analysis(text, interval, bigint, float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.api_query_analysis(text, interval, bigint, float8, float8, float8) TO pganalytics_gateway, pganalytics_admin;
