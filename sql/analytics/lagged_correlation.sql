-- Time-lagged cross-correlation of two series sampled at the same timestamps: Pearson's r of
-- x[t] and y[t + lag] for every lag from -p_max_lag to +p_max_lag in steps of the series' grid
-- (lag 0 included; lag > 0: x leads y). The series are put on a regular grid (option step, an
-- interval text or seconds; default the median spacing), a grid point without a sample stays
-- missing and its pairs are dropped (never interpolated); then prepared (option detrend): "auto"
-- (the default) removes each one's linear trend and differences both when either still looks
-- like a random walk (ADF test), "linear", "difference" or "none" (plpython/correlation.py says
-- why: trending series correlate whatever they are). r is NULL at a lag with fewer than
-- min_pairs (30) pairs. An unknown option, arrays of different lengths, NULLs (leave a missing
-- point out instead), NaN or infinity, timestamps not strictly increasing, fewer than min_pairs
-- points, a constant series (also once detrended) and a negative or NULL p_max_lag are refused
-- with an error saying which (SQLSTATE 22023).
-- depends: analytics/lagged_correlation_values.sql
CREATE OR REPLACE FUNCTION pganalytics.lagged_correlation(p_ts timestamptz[], p_x float8[], p_y float8[],
                                                          p_max_lag interval DEFAULT '5 min',
                                                          p_options jsonb DEFAULT '{}')
RETURNS TABLE (lag interval, r float8)
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.lag * interval '1 second', c.r
    FROM pganalytics.lagged_correlation_values(
             CASE WHEN p_ts IS NOT NULL THEN
                 ARRAY(SELECT extract(epoch FROM t)::float8 FROM unnest(p_ts) WITH ORDINALITY u (t, k) ORDER BY k)
             END,
             p_x, p_y, extract(epoch FROM p_max_lag)::float8, p_options) WITH ORDINALITY AS c (lag, r, i)
    ORDER BY c.i
$$;
REVOKE ALL ON FUNCTION pganalytics.lagged_correlation(timestamptz[], float8[], float8[], interval, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.lagged_correlation(timestamptz[], float8[], float8[], interval, jsonb) TO pganalytics_admin;
