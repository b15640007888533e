-- The forecaster over one series given as epoch seconds (plpython/forecast.py): one row per
-- step ahead, in order, with its epoch seconds, forecast and interval bounds.
-- forecast_series() is the interface; this is its PL/Python half, taking epoch seconds because
-- a timestamptz[] reaches PL/Python as text to parse.
CREATE OR REPLACE FUNCTION pganalytics.forecast_values(p_epoch float8[], p_values float8[], p_horizon int,
                                                       p_options jsonb)
RETURNS TABLE (epoch float8, yhat float8, lo float8, hi float8)
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module forecast
import json
try:
    options = json.loads(p_options) if p_options is not None else {}
    if p_horizon is None:
        raise ValueError("horizon must not be NULL")
    times, yhat, lo, hi = forecast.forecast(p_epoch, p_values, p_horizon, options)
except ValueError as e:
    plpy.error("forecast_series: %s" % e, sqlstate="22023")  # invalid_parameter_value
return zip(times, yhat, lo, hi)
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.forecast_values(float8[], float8[], int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.forecast_values(float8[], float8[], int, jsonb) TO pganalytics_admin;
