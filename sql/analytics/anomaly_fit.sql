-- The fitting half of train_anomaly_model(): per key, the parameters plpython/anomaly.py
-- fit_model() fits on the points given (parallel arrays, sorted by key then time; ts in epoch
-- seconds), as the bytes anomaly_models stores (big-endian float8s, rows in key order).
-- Pure: reads and writes nothing, so it needs no rights (and is no SECURITY DEFINER: the
-- train_anomaly_model() wrapper reads and writes as the store's owner).
CREATE OR REPLACE FUNCTION pganalytics.anomaly_fit(p_keys text[], p_ts float8[], p_values float8[], p_options jsonb)
RETURNS TABLE (keys text[], week_profile bytea, thresholds bytea, weights bytea, warm_state bytea,
               detectors text[], summary jsonb)
LANGUAGE plpython3u
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module anomaly
import json
if p_keys is None or p_ts is None or p_values is None or not (len(p_keys) == len(p_ts) == len(p_values)):
    plpy.error("train_anomaly_model: keys, timestamps and values must be arrays of the same length",
               sqlstate="22023")
series = {}
for k, t, v in zip(p_keys, p_ts, p_values):
    series.setdefault(k, ([], []))
    series[k][0].append(t)
    series[k][1].append(v)
try:
    model = anomaly.fit_model(series, json.loads(p_options) if p_options is not None else {})
except ValueError as e:
    plpy.error("train_anomaly_model: %s" % e, sqlstate="22023")
return [(model["keys"], anomaly.encode(model["week_profile"]), anomaly.encode(model["threshold"]),
         anomaly.encode(model["weights"]), anomaly.encode(model["warm"]), list(anomaly.DETECTORS),
         json.dumps(model["summary"]))]
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_fit(text[], float8[], float8[], jsonb) FROM PUBLIC;
