-- The lagged correlation of two series given as epoch seconds (plpython/correlation.py): one
-- row per lag, -max_lag .. +max_lag in steps of the grid, with the lag in seconds (> 0: x
-- leads y) and Pearson's r of the prepared series at that lag (NULL: fewer than min_pairs pairs).
-- lagged_correlation() is the interface; this is its PL/Python half, taking epoch seconds
-- because a timestamptz[] reaches PL/Python as text to parse.
CREATE OR REPLACE FUNCTION pganalytics.lagged_correlation_values(p_epoch float8[], p_x float8[], p_y float8[],
                                                                 p_max_lag float8, p_options jsonb)
RETURNS TABLE (lag float8, r float8)
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module correlation
import json
try:
    options = json.loads(p_options) if p_options is not None else {}
    lags, rs, _ = correlation.lagged_correlation(p_epoch, p_x, p_y, p_max_lag, options)
except ValueError as e:
    plpy.error("lagged_correlation: %s" % e, sqlstate="22023")  # invalid_parameter_value
return zip(lags, rs)
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.lagged_correlation_values(float8[], float8[], float8[], float8, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.lagged_correlation_values(float8[], float8[], float8[], float8, jsonb) TO pganalytics_admin;
