-- Robust z-score of p_value against p_baseline (median/MAD; see plpython/robust.py).
CREATE OR REPLACE FUNCTION pganalytics.robust_zscore(p_baseline float8[], p_value float8)
RETURNS float8
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module robust
return robust.robust_zscore(p_baseline, p_value)
$plpython$;
-- Functions are executable by PUBLIC unless revoked (per-schema default privileges cannot revoke it).
REVOKE ALL ON FUNCTION pganalytics.robust_zscore(float8[], float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.robust_zscore(float8[], float8) TO pganalytics_admin;
