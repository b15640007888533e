-- When a rising series will reach a limit (plpython/forecast.py crossing()): the forecast of
-- p_horizon steps past its last point (at most 10 x its history: the horizon used is returned),
-- the first time the point forecast reaches p_limit (predicted, epoch seconds; NULL: not within
-- the horizon), the first time the interval's upper bound does (earliest), and the confidence
-- that it is reached within the horizon. The PL/Python half of forecast_alerts(); pure.
CREATE OR REPLACE FUNCTION pganalytics.forecast_crossing(p_epoch float8[], p_values float8[], p_horizon int,
                                                         p_limit float8, p_options jsonb)
RETURNS TABLE (predicted float8, earliest float8, confidence float8, current float8, last float8,
               horizon int, model text, yhat_end float8)
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module forecast
import json
try:
    options = json.loads(p_options) if p_options is not None else {}
    c = forecast.crossing(p_epoch, p_values, p_horizon, p_limit, options)
except ValueError as e:
    plpy.error("forecast_crossing: %s" % e, sqlstate="22023")  # invalid_parameter_value
return [(c["predicted"], c["earliest"], c["confidence"], c["current"], c["last"], c["horizon"], c["model"],
         c["yhat_end"])]
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.forecast_crossing(float8[], float8[], int, float8, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.forecast_crossing(float8[], float8[], int, float8, jsonb) TO pganalytics_admin;
