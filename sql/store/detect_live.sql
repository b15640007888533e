-- depends: analytics/anomaly_inputs_many.sql
-- depends: analytics/record_anomalies.sql
-- The live path of anomaly detection, called by maintain() with each chunk of instances whose
-- minutes [p_from[i], p_to[i]) (epoch seconds) it has just rolled up: the instances' derived
-- metrics of those minutes (anomaly_inputs_many(), one query for the chunk) are scored against
-- each instance's stored detector state (anomaly_state_blocks), all the chunk's instances in
-- one pass of the same Bank as anomaly_scores() (plpython/anomaly.py live_fold_many()), with its newest
-- trained model if any; the chunk's new states are written in one statement, and the scored
-- points go to record_anomalies(), which opens, extends and closes events. A minute is scored
-- once: a block's scored_until only moves forward (minutes rebuilt from late frames are not
-- rescored; detect_anomalies() rescores a period on demand). Returns the number of points
-- scored.
--
-- At fleet scale (~10,000 instances a minute) the cost was one inputs query, one state write
-- and one record_anomalies() call per instance; now they are one each per chunk, except
-- record_anomalies(), which is still per instance (its rules walk one instance's events) but
-- called only for an instance with a point that may be anomalous (flagged by the detector, or
-- past its type's hard limit) or an event still open: for any other instance it would open,
-- extend and close nothing (every step of it starts from an anomalous point or an open
-- event), so skipping it writes the same events. The time each part took goes out as a
-- DEBUG2 message (bench/anomaly_live_speed.py reads it).
CREATE OR REPLACE FUNCTION pganalytics.detect_live(p_ids int[], p_from float8[], p_to float8[])
RETURNS bigint
LANGUAGE plpython3u
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module anomaly
if p_ids is None or p_from is None or p_to is None or not (len(p_ids) == len(p_from) == len(p_to)):
    plpy.error("detect_live: ids, from and to must be arrays of the same length", sqlstate="22023")
if None in p_ids or len(set(p_ids)) != len(p_ids):
    # one state row each, written in one statement
    plpy.error("detect_live: the instance ids must be distinct and not NULL", sqlstate="22023")
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
            "SELECT instance_id, anomaly_type || '/' || subject AS key, extract(epoch FROM bucket)::float8 AS bucket,"
            " value, context::text AS context"
            " FROM pganalytics.anomaly_inputs_many($1,"
            " ARRAY(SELECT to_timestamp(e) FROM unnest($2::float8[]) WITH ORDINALITY u (e, k) ORDER BY k),"
            " ARRAY(SELECT to_timestamp(e) FROM unnest($3::float8[]) WITH ORDINALITY u (e, k) ORDER BY k))",
            ["int[]", "float8[]", "float8[]"]),
        # One row per instance; its keys are $2[lo:hi] (arrays of arrays must be rectangular).
        # A NULL profiles: unchanged this call (they change once an hour), keep the stored ones;
        # it travels as '' (an instance's first row always has its profiles, and they only grow).
        # DO UPDATE uses no function (Citus refuses non-immutable ones there): updated_at is the
        # insert's default.
        "save": plpy.prepare(
            "INSERT INTO pganalytics.anomaly_state_blocks AS b"
            " (instance_id, keys, hot, profiles, scored_until, model_version)"
            " SELECT u.instance_id, $2[u.lo:u.hi], u.hot, coalesce(u.profiles, '\\x'::bytea), to_timestamp(u.until),"
            " u.model_version"
            " FROM unnest($1::int[], $3::int[], $4::int[], $5::bytea[], $6::bytea[], $7::float8[], $8::int[])"
            " AS u (instance_id, lo, hi, hot, profiles, until, model_version)"
            " ON CONFLICT (instance_id) DO UPDATE SET keys = EXCLUDED.keys, hot = EXCLUDED.hot,"
            " profiles = CASE WHEN EXCLUDED.profiles = '\\x'::bytea THEN b.profiles ELSE EXCLUDED.profiles END,"
            " scored_until = EXCLUDED.scored_until, model_version = EXCLUDED.model_version,"
            " updated_at = EXCLUDED.updated_at",
            ["int[]", "text[]", "int[]", "int[]", "bytea[]", "bytea[]", "float8[]", "int[]"]),
        "limits": plpy.prepare(
            "SELECT anomaly_type, direction, hard_limit FROM pganalytics.anomaly_types WHERE hard_limit IS NOT NULL"),
        "open": plpy.prepare(
            "SELECT DISTINCT instance_id FROM pganalytics.anomalies WHERE instance_id = ANY ($1) AND ended_at IS NULL"
            " AND source <> 'forecast'",  # days-to-threshold alerts: not the detector's
            ["int[]"]),
        "record": plpy.prepare(
            "SELECT pganalytics.record_anomalies($1, 'live', $2, $3,"
            " ARRAY(SELECT to_timestamp(e) FROM unnest($4::float8[]) WITH ORDINALITY u (e, k) ORDER BY k),"
            " $5, $6, $7, $8, $9::jsonb[])",
            ["int", "text[]", "text[]", "float8[]", "float8[]", "float8[]", "float8[]", "boolean[]", "text[]"]),
    }
plans = SD["detect_live.plans"]
import json
import time
clock = time.perf_counter
spent = dict.fromkeys(("inputs", "scoring", "state_write", "recording"), 0.0)
began = clock()
states = {r["instance_id"]: r for r in plpy.execute(plans["state"], [p_ids])}
models = {}
for r in plpy.execute(plans["model"], [p_ids]):
    models[r["instance_id"]] = (r["version"], anomaly.model_from_row(
        r["keys"], r["week_profile"], r["thresholds"], r["weights"], r["detectors"], r["warm_state"]))
# Each instance's minutes not scored yet.
work = []
for iid, t0, t1 in zip(p_ids, p_from, p_to):
    st = states.get(iid)
    start = t0 if st is None else max(t0, st["until"])
    if t1 > start:
        work.append((iid, start, t1))
if not work:
    return 0
c0 = clock()
rows = plpy.execute(plans["inputs"], [[w[0] for w in work], [w[1] for w in work], [w[2] for w in work]])
by_instance = {}
for r in rows:  # ordered by instance
    by_instance.setdefault(r["instance_id"], []).append(r)
c1 = clock()
spent["inputs"] += c1 - c0
save = {"ids": [], "keys": [], "lo": [], "hi": [], "hot": [], "profiles": [], "until": [], "version": []}
blocks = []
for iid, start, t1 in work:
    st = states.get(iid)
    got = by_instance.get(iid, [])
    version, model = models.get(iid, (None, None))
    if model is not None:
        # a model's first minute: its keys start from the state it was fitted with
        model["fresh"] = st is None or st["model_version"] != version
    blocks.append((st["keys"] if st else [], {"hot": st["hot"], "profiles": st["profiles"]} if st else None,
                   [r["key"] for r in got], [r["bucket"] for r in got], [r["value"] for r in got], model))
results = []
# every instance of the chunk in one Bank: a step serves all their series
for (iid, start, t1), (keys, sent, scored) in zip(work, anomaly.live_fold_many(blocks)):
    save["ids"].append(iid)
    save["lo"].append(len(save["keys"]) + 1)
    save["keys"].extend(keys)
    save["hi"].append(len(save["keys"]))
    save["hot"].append(sent["hot"])
    save["profiles"].append(sent["profiles"])
    save["until"].append(t1)
    save["version"].append(models.get(iid, (None, None))[0])
    if scored:
        results.append((iid, by_instance.get(iid, []), scored))
c2 = clock()
spent["scoring"] += c2 - c1
plpy.execute(plans["save"], [save["ids"], save["keys"], save["lo"], save["hi"], save["hot"], save["profiles"],
                             save["until"], save["version"]])
c3 = clock()
spent["state_write"] += c3 - c2
limits = {r["anomaly_type"]: (r["direction"] == "up", r["hard_limit"]) for r in plpy.execute(plans["limits"])}
still_open = {r["instance_id"] for r in plpy.execute(plans["open"], [[r[0] for r in results]])} if results else set()


def may_be_anomalous(point):
    # a superset of record_anomalies()' anomalous point: flagged, or past the hard limit
    if point[5] is not False:
        return True
    up, limit = limits.get(point[0].split("/", 1)[0], (None, None))
    return limit is not None and (point[2] >= limit if up else point[2] <= limit)


scored_points = 0
for iid, got, scored in results:
    scored_points += len(scored)
    if iid not in still_open and not any(may_be_anomalous(p) for p in scored):
        continue
    context = {(r["key"], r["bucket"]): r["context"] for r in got}
    types, subjects = zip(*(k.split("/", 1) for k, *_ in scored))
    plpy.execute(plans["record"], [iid, list(types), list(subjects), [p[1] for p in scored],
                                   [p[2] for p in scored], [p[3] for p in scored],
                                   [p[4] for p in scored], [p[5] for p in scored],
                                   [context.get((p[0], p[1])) for p in scored]])
spent["recording"] += clock() - c3
spent["rest"] = clock() - began - sum(spent.values())
plpy.debug("detect_live: " + json.dumps(spent))
return scored_points
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.detect_live(int[], float8[], float8[]) FROM PUBLIC;
