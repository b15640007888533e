-- Anomaly scores of any series, online: a point's score depends only on the points before it.
-- score is in [0, 1] (0.5: as unlikely as p = 1e-5 under the series' learnt behaviour);
-- is_anomaly uses the production threshold (option threshold, 0.5). The first warmup_points
-- (100) points score 0, neutral. Options (jsonb) override the detector's defaults, listed in
-- plpython/anomaly.py; an unknown option, arrays of different lengths, NULLs, NaN or infinity,
-- and timestamps that are not strictly increasing are refused with an error saying which.
-- depends: analytics/anomaly_series.sql
CREATE OR REPLACE FUNCTION pganalytics.anomaly_scores(p_ts timestamptz[], p_values float8[],
                                                      p_options jsonb DEFAULT '{}')
RETURNS TABLE (ts timestamptz, value float8, expected float8, score float8, is_anomaly boolean)
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- ROWS FROM zips the points with the detector's rows, which come back in the same order.
    SELECT p.ts, p.value, s.expected, s.score, s.is_anomaly
    FROM ROWS FROM (unnest(p_ts, p_values)) WITH ORDINALITY AS p (ts, value, i)
    JOIN ROWS FROM (pganalytics.anomaly_series(
             CASE WHEN p_ts IS NOT NULL THEN
                 ARRAY(SELECT extract(epoch FROM t)::float8 FROM unnest(p_ts) WITH ORDINALITY u (t, k) ORDER BY k)
             END,
             p_values, p_options)) WITH ORDINALITY AS s (expected, score, is_anomaly, i) USING (i)
    ORDER BY p.i
$$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_scores(timestamptz[], float8[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.anomaly_scores(timestamptz[], float8[], jsonb) TO pganalytics_admin;
