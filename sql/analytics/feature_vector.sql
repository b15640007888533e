-- The feature vector of one series of points, shared by features() and query_features() so the
-- two cannot drift apart. p_ts/p_values: the points of the lookback; p_recent_ts/_values: the
-- points of the trailing 5 minutes (the callers choose them: at raw resolution, whatever the
-- lookback's). NaN and infinite values are left out, as the rollups leave them out.
--   points, mean, stddev (sample), p95 (percentile_cont: interpolated, like numpy's default);
--   moving_avg_5m, moving_stddev_5m: mean and sample stddev of the trailing 5 minutes;
--   rate_of_change: least-squares slope of the trailing 5 minutes, per second: how fast the
--     value moves now (a least-squares fit, not last minus first: one noisy endpoint would
--     decide that); slope is the same fit over the whole lookback;
--   trend: 'up'/'down' when the lookback's slope is significant (t-statistic |t| >= 2, i.e.
--     r^2 (n - 2) >= 4 (1 - r^2)) AND large: the change it fits across the points' span is at
--     least the residual stddev (a long series makes a tiny drift "significant"; this keeps a
--     drift smaller than the noise 'flat'), and above rounding (1e-9 of the mean: a constant
--     series' sums of float8s leave a slope of ~1e-17); else 'flat'; NULL below 3 points;
--   volatility: coefficient of variation, stddev / |mean| (NULL when the mean is 0). Not the
--     stddev of returns: returns x[i] / x[i-1] - 1 are undefined at 0, which counter rates
--     (deadlocks, temp files per second) mostly are; the CV is scale-free, so comparable
--     across series and instances.
-- Time enters as seconds from the first point (float8): the epoch's 1.8e9 would cost the
-- regression's sums most of their precision.
CREATE OR REPLACE FUNCTION pganalytics.feature_vector(
    p_ts            timestamptz[],
    p_values        float8[],
    p_recent_ts     timestamptz[],
    p_recent_values float8[])
RETURNS TABLE (points int, mean float8, stddev float8, p95 float8, moving_avg_5m float8,
               moving_stddev_5m float8, rate_of_change float8, trend text, slope float8, volatility float8)
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pts AS (
        SELECT u.v, extract(epoch FROM u.ts - p_ts[1])::float8 AS x
        FROM unnest(p_ts, p_values) AS u(ts, v)
        -- not `v = v`: PostgreSQL's NaN equals NaN (and sorts above every number)
        WHERE u.v NOT IN ('NaN', 'infinity', '-infinity')),
    recent AS (
        SELECT u.v, extract(epoch FROM u.ts - p_recent_ts[1])::float8 AS x
        FROM unnest(p_recent_ts, p_recent_values) AS u(ts, v)
        WHERE u.v NOT IN ('NaN', 'infinity', '-infinity')),
    whole AS (
        SELECT count(*)::int AS n, avg(p.v) AS mean, stddev_samp(p.v) AS sd, var_samp(p.v) AS var,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY p.v) AS p95,
               regr_slope(p.v, p.x) AS slope, regr_r2(p.v, p.x) AS r2, max(p.x) - min(p.x) AS span
        FROM pts p),
    tail AS (
        SELECT avg(r.v) AS mean, stddev_samp(r.v) AS sd, regr_slope(r.v, r.x) AS slope FROM recent r)
    SELECT w.n, w.mean, w.sd, w.p95, t.mean, t.sd, t.slope,
           CASE WHEN w.n < 3 OR w.slope IS NULL THEN NULL
                WHEN abs(w.slope * w.span) > 1e-9 * abs(w.mean)
                 AND w.r2 * (w.n - 2) >= 4 * (1 - w.r2)
                 AND (w.slope * w.span) ^ 2 >= w.var * (1 - w.r2)
                THEN CASE WHEN w.slope > 0 THEN 'up' ELSE 'down' END
                ELSE 'flat' END,
           w.slope,
           w.sd / nullif(abs(w.mean), 0)
    FROM whole w CROSS JOIN tail t
$$;
REVOKE ALL ON FUNCTION pganalytics.feature_vector(timestamptz[], float8[], timestamptz[], float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.feature_vector(timestamptz[], float8[], timestamptz[], float8[]) TO pganalytics_admin;
