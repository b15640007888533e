-- Scores of many series at once, for detect_anomalies(): the points of every series, in any
-- order (p_series[i] numbers point i's series, p_epoch[i] its time in epoch seconds; a series
-- has at most one point at a time). Each series gets exactly what anomaly_scores() gives it alone (online, same
-- options, same warm-up), but one Bank of plpython/anomaly.py steps every series together,
-- minute by minute, a series with no point in a minute left as it was (the detector skips a
-- NaN). anomaly_scores() per series costs a Python step per point (~0.4 ms): 30 series of two
-- days were 25 s; here a step serves every series. Returns (i, expected, score, is_anomaly)
-- for the points at or after p_emit_from only: the warm-up before is scored, not returned.
-- With a trained model (p_model: an anomaly_models row as jsonb with its byte fields in hex,
-- and p_keys naming series number k as the model's keys do, '<type>/<subject>'), each series
-- the model knows is scored with its fitted profile, threshold and weights.
CREATE OR REPLACE FUNCTION pganalytics.anomaly_event_scores(
    p_series    int[],
    p_epoch     float8[],
    p_values    float8[],
    p_emit_from float8 DEFAULT NULL,
    p_options   jsonb DEFAULT '{}',
    p_keys      text[] DEFAULT NULL,
    p_model     jsonb DEFAULT NULL)
RETURNS TABLE (i int, expected float8, score float8, is_anomaly boolean)
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module anomaly
import json
import math
import numpy as np


def fail(message):
    plpy.error("anomaly_event_scores: %s" % message, sqlstate="22023")  # invalid_parameter_value


if p_series is None or p_epoch is None or p_values is None:
    fail("series, timestamps and values must not be NULL")
if not (len(p_series) == len(p_epoch) == len(p_values)):
    fail("%d series numbers, %d timestamps and %d values: the arrays must be as long as each other"
         % (len(p_series), len(p_epoch), len(p_values)))
for k, (s, t, v) in enumerate(zip(p_series, p_epoch, p_values)):
    if s is None or t is None or v is None:
        fail("element %d is NULL" % (k + 1))
    if not (math.isfinite(t) and math.isfinite(v)):
        fail("element %d is not finite" % (k + 1))
try:
    options = json.loads(p_options) if p_options is not None else {}
    n = len(p_values)
    if n == 0:
        return []
    series = np.asarray(p_series, dtype=np.int64)
    epoch = np.asarray(p_epoch, dtype=np.float64)
    values = np.asarray(p_values, dtype=np.float64)
    keys, col = np.unique(series, return_inverse=True)
    times, row = np.unique(epoch, return_inverse=True)
    if len(np.unique(row * len(keys) + col)) != n:
        fail("a series has two points at one time")
    grid = np.full((len(keys), len(times)), np.nan)
    grid[col, row] = values
    model = None
    if p_model is not None:
        if p_keys is None or len(p_keys) < len(keys):
            fail("a model needs p_keys: the key of every series number")
        m = json.loads(p_model)
        fitted = anomaly.model_from_row(m["keys"], bytes.fromhex(m["week_profile"][2:]),
                                        bytes.fromhex(m["thresholds"][2:]), bytes.fromhex(m["weights"][2:]),
                                        m["detectors"])
        model = anomaly._model_rows(fitted, [p_keys[int(k) - 1] for k in keys])
    bank = anomaly.Bank(len(keys), options, model=model)
    exp, sco, flag = bank.run(times, grid)
except anomaly.OptionError as e:
    fail(str(e))
emit = np.arange(n) if p_emit_from is None else np.nonzero(epoch >= p_emit_from)[0]
return [(int(k) + 1, float(exp[col[k], row[k]]), float(sco[col[k], row[k]]), bool(flag[col[k], row[k]]))
        for k in emit]
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_event_scores(int[], float8[], float8[], float8, jsonb, text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.anomaly_event_scores(int[], float8[], float8[], float8, jsonb, text[], jsonb) TO pganalytics_admin;
