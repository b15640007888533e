-- A forecast of any series: p_horizon steps past its last timestamp, on the series' median
-- step, with the point forecast (yhat) and a prediction interval [lo, hi] (option level,
-- 0.95). Exponential smoothing with a damped trend and, where the history holds two whole
-- cycles of them, daily and weekly seasons; the parameters and the model are fitted on the
-- history, the interval comes from the model's own multi-step errors over that history
-- (plpython/forecast.py says how). Options (jsonb): level, season (auto, none, day, week,
-- day+week), model (auto, holt, hw, naive), damped, max_gap. An unknown option, arrays of
-- different lengths, NULLs, NaN or infinity, timestamps that are not strictly increasing,
-- fewer than 10 points, a gap over max_gap steps, a season without two cycles of history and a
-- horizon under 1 or over min(10,000, 10 x the history) are refused with an error saying which.
-- depends: analytics/forecast_values.sql
CREATE OR REPLACE FUNCTION pganalytics.forecast_series(p_ts timestamptz[], p_values float8[], p_horizon int,
                                                       p_options jsonb DEFAULT '{}')
RETURNS TABLE (ts timestamptz, yhat float8, lo float8, hi float8)
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_timestamp(f.epoch), f.yhat, f.lo, f.hi
    FROM pganalytics.forecast_values(
             CASE WHEN p_ts IS NOT NULL THEN
                 ARRAY(SELECT extract(epoch FROM t)::float8 FROM unnest(p_ts) WITH ORDINALITY u (t, k) ORDER BY k)
             END,
             p_values, p_horizon, p_options) WITH ORDINALITY AS f (epoch, yhat, lo, hi, i)
    ORDER BY f.i
$$;
REVOKE ALL ON FUNCTION pganalytics.forecast_series(timestamptz[], float8[], int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.forecast_series(timestamptz[], float8[], int, jsonb) TO pganalytics_admin;
