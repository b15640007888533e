-- The correlation matrix of metrics on one time grid (plpython/correlation.py), in long form:
-- one row per pair of metrics (x before y in p_names' order, no diagonal), for
-- pganalytics.correlations() and anyone else with columns in hand.
--   p_names    the metrics' names (unique, not NULL), used in the rows and the insight words;
--   p_ts       the grid: strictly increasing, regular (the first timestamp plus whole steps of
--              the median spacing, or of option step); a missing point may be left out;
--   p_columns  float8[][]: one row per name, as long as p_ts, NULL = missing at that time
--              (build it with array_agg(column_array ORDER BY name_position));
--   p_options  threshold (0.7), max_lag (interval text or seconds, 300), detrend (auto, linear,
--              difference, none), min_pairs (30), alpha (0.05), step (interval text or seconds).
-- Columns: r = Pearson's r at lag 0 of the pair as prepared (pairwise complete); lag = the lag
-- of the largest |r| within +-max_lag (> 0: x leads y; the smallest |lag| among |r| within 0.02
-- of it), r_at_lag its r, leader the name of the leading metric (NULL at lag 0), prepared what
-- was done to the pair ('detrended', 'differenced: <names> trend like a random walk', 'as given',
-- 'differenced'), significant whether |r_at_lag| beats what chance gives for that many
-- (autocorrelated) points and lags (Bonferroni over lags only, not over pairs); insight a
-- sentence for pairs with |r| or |r_at_lag| over threshold, e.g. 'lock waits leads query
-- latency by 40 s, r = 0.86 (both detrended)', else NULL. A pair that cannot be correlated (a
-- constant metric, fewer than min_pairs points where both are present) has r NULL and the reason
-- in insight. Bad input (NULLs where not allowed, NaN or infinity, lengths, duplicate names, an
-- irregular grid, unknown options) is refused with SQLSTATE 22023.
CREATE OR REPLACE FUNCTION pganalytics.correlation_matrix_values(p_names text[], p_ts timestamptz[],
                                                                 p_columns float8[][], p_options jsonb DEFAULT '{}')
RETURNS TABLE (x text, y text, r float8, lag interval, r_at_lag float8, leader text, prepared text,
               significant boolean, insight text)
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $plpython$
#pganalytics:module correlation
import datetime
import json
try:
    options = json.loads(p_options) if p_options is not None else {}
    if p_ts is None:
        raise ValueError("grid timestamps must not be NULL")
    epoch = []
    for i, t in enumerate(p_ts):
        if t is None:
            raise ValueError("grid timestamp %d is NULL" % (i + 1))
        try:
            epoch.append(datetime.datetime.fromisoformat(t).timestamp())
        except ValueError:
            raise ValueError("grid timestamp %d (%s) is not a finite time" % (i + 1, t)) from None
    if p_columns is not None and p_names is not None and len(p_names) and \
            (len(p_columns) == 0 or not isinstance(p_columns[0], list)):
        raise ValueError("columns must be a two-dimensional array: one row of values per name")
    rows = correlation.correlation_matrix(p_names, epoch, p_columns, options)
except ValueError as e:
    plpy.error("correlation_matrix: %s" % e, sqlstate="22023")  # invalid_parameter_value
return [(w["x"], w["y"], w["r"], None if w["lag"] is None else "%r seconds" % w["lag"], w["r_at_lag"],
         w["leader"], w["prepared"], w["significant"], w["insight"]) for w in rows]
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.correlation_matrix_values(text[], timestamptz[], float8[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.correlation_matrix_values(text[], timestamptz[], float8[], jsonb) TO pganalytics_admin;
