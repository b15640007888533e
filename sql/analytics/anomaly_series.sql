-- The detector over one series given as epoch seconds (plpython/anomaly.py, the same Bank the
-- live path steps): one row per point, in order, with its expected value, score and flag.
-- anomaly_scores() is the interface; this is its PL/Python half, taking epoch seconds because a
-- timestamptz[] reaches PL/Python as text to parse.
CREATE OR REPLACE FUNCTION pganalytics.anomaly_series(p_epoch float8[], p_values float8[], p_options jsonb)
RETURNS TABLE (expected float8, score float8, is_anomaly boolean)
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module anomaly
import json
try:
    options = json.loads(p_options) if p_options is not None else {}
    expected, scores, flags = anomaly.score(p_epoch, p_values, options)
except ValueError as e:
    plpy.error("anomaly_scores: %s" % e, sqlstate="22023")  # invalid_parameter_value
return zip(expected, scores, flags)
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_series(float8[], float8[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.anomaly_series(float8[], float8[], jsonb) TO pganalytics_admin;
