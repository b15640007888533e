-- A trained model's blend for one feature vector (diagnose()'s "features", whose rule:<cause>
-- entries are the rules' confidences): {cause: blended confidence}, see
-- plpython/root_cause_model.py for the weight. With p_model NULL, the rules' own confidences.
CREATE OR REPLACE FUNCTION pganalytics.root_cause_model_scores(p_model jsonb, p_features jsonb)
RETURNS jsonb
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module root_cause_model
import json
features = json.loads(p_features) if p_features is not None else None
if not isinstance(features, dict):
    plpy.error("root_cause_model_scores: features must be a JSON object", sqlstate="22023")
rules = {k[5:]: float(v) for k, v in features.items() if k.startswith("rule:") and isinstance(v, (int, float))}
if p_model is None:
    return json.dumps(rules)
model = json.loads(p_model)
return json.dumps(root_cause_model.blend(rules, root_cause_model.predict(model, features), model))
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.root_cause_model_scores(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.root_cause_model_scores(jsonb, jsonb) TO pganalytics_admin;
