-- depends: analytics/anomaly_inputs.sql
-- depends: analytics/record_anomalies.sql
-- The live path of anomaly detection, called by maintain() with each chunk of instances whose
-- minutes [p_from[i], p_to[i]) (epoch seconds) it has just rolled up: the instance's derived
-- metrics of those minutes (anomaly_inputs()) are scored against its stored detector state
-- (anomaly_state_blocks) by the same Bank as anomaly_scores() (plpython/anomaly.py
-- live_fold()), using its newest trained model if any, and the scored points go to
-- record_anomalies(), which opens, extends and closes events. A minute is scored once: a
-- block's scored_until only moves forward (minutes rebuilt from late frames are not rescored;
-- detect_anomalies() rescores a period on demand). Returns the number of points scored.
CREATE OR REPLACE FUNCTION pganalytics.detect_live(p_ids int[], p_from float8[], p_to float8[])
RETURNS bigint
LANGUAGE plpython3u
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module anomaly
if p_ids is None or p_from is None or p_to is None or not (len(p_ids) == len(p_from) == len(p_to)):
    plpy.error("detect_live: ids, from and to must be arrays of the same length", sqlstate="22023")
if "detect_live.plans" not in SD:
    SD["detect_live.plans"] = {
        "state": plpy.prepare(
            "SELECT instance_id, keys, hot, profiles, model_version, extract(epoch FROM scored_until)::float8 AS until"
            " FROM pganalytics.anomaly_state_blocks WHERE instance_id = ANY ($1)", ["int[]"]),
        "model": plpy.prepare(
            "SELECT DISTINCT ON (instance_id) instance_id, version, keys, week_profile, thresholds, weights,"
            " warm_state, detectors"
            " FROM pganalytics.anomaly_models WHERE instance_id = ANY ($1)"
            " ORDER BY instance_id, version DESC", ["int[]"]),
        "inputs": plpy.prepare(
            "SELECT anomaly_type || '/' || subject AS key, extract(epoch FROM bucket)::float8 AS bucket, value,"
            " context::text AS context"
            " FROM pganalytics.anomaly_inputs($1, to_timestamp($2), to_timestamp($3))",
            ["int", "float8", "float8"]),
        # profiles NULL: unchanged this call (they change once an hour), keep the stored ones
        "save": plpy.prepare(
            "INSERT INTO pganalytics.anomaly_state_blocks AS b"
            " (instance_id, keys, hot, profiles, scored_until, model_version)"
            " VALUES ($1, $2, $3, coalesce($4, '\\x'::bytea), to_timestamp($5), $6)"
            " ON CONFLICT (instance_id) DO UPDATE SET keys = EXCLUDED.keys, hot = EXCLUDED.hot,"
            " profiles = coalesce($4, b.profiles), scored_until = EXCLUDED.scored_until,"
            " model_version = EXCLUDED.model_version, updated_at = now()",
            ["int", "text[]", "bytea", "bytea", "float8", "int"]),
        "record": plpy.prepare(
            "SELECT pganalytics.record_anomalies($1, 'live', $2, $3,"
            " ARRAY(SELECT to_timestamp(e) FROM unnest($4::float8[]) WITH ORDINALITY u (e, k) ORDER BY k),"
            " $5, $6, $7, $8, $9::jsonb[])",
            ["int", "text[]", "text[]", "float8[]", "float8[]", "float8[]", "float8[]", "boolean[]", "text[]"]),
    }
plans = SD["detect_live.plans"]
import numpy as np
states = {r["instance_id"]: r for r in plpy.execute(plans["state"], [p_ids])}
models = {}
for r in plpy.execute(plans["model"], [p_ids]):
    k = len(r["keys"])
    trained = np.frombuffer(r["weights"], dtype=">f8").reshape(k, len(r["detectors"]))
    # by name: a model trained before a detector was added gives it weight 1
    weights = np.ones((k, len(anomaly.DETECTORS)))
    for j, d in enumerate(r["detectors"]):
        if d in anomaly.DETECTORS:
            weights[:, anomaly.DETECTORS.index(d)] = trained[:, j]
    models[r["instance_id"]] = (r["version"], {
        "keys": r["keys"],
        "week_profile": np.frombuffer(r["week_profile"], dtype=">f8").reshape(k, 168),
        "threshold": np.frombuffer(r["thresholds"], dtype=">f8"), "weights": weights,
        "warm": anomaly.decode(r["warm_state"], k, "hot")})
scored_points = 0
for iid, t0, t1 in zip(p_ids, p_from, p_to):
    st = states.get(iid)
    start = t0 if st is None else max(t0, st["until"])
    if t1 <= start:
        continue
    rows = plpy.execute(plans["inputs"], [iid, start, t1])
    version, model = models.get(iid, (None, None))
    if model is not None:
        # a model's first minute: its keys start from the state it was fitted with
        model["fresh"] = st is None or st["model_version"] != version
    keys, sent, scored = anomaly.live_fold(
        st["keys"] if st else [], {"hot": st["hot"], "profiles": st["profiles"]} if st else None,
        [r["key"] for r in rows], [r["bucket"] for r in rows], [r["value"] for r in rows], model=model)
    plpy.execute(plans["save"], [iid, keys, sent["hot"], sent["profiles"], t1, version])
    if scored:
        context = {(r["key"], r["bucket"]): r["context"] for r in rows}
        types, subjects = zip(*(k.split("/", 1) for k, *_ in scored))
        plpy.execute(plans["record"], [iid, list(types), list(subjects), [p[1] for p in scored],
                                       [p[2] for p in scored], [p[3] for p in scored],
                                       [p[4] for p in scored], [p[5] for p in scored],
                                       [context.get((p[0], p[1])) for p in scored]])
        scored_points += len(scored)
return scored_points
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.detect_live(int[], float8[], float8[]) FROM PUBLIC;
