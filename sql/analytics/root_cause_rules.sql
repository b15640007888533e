-- The root-cause rules (plpython/root_cause.py) over one diagnosis_inputs() document: the
-- ranked causes with confidence, evidence, recommendations, queries and objects, a summary,
-- and the evidence as flat features (with each rule's confidence as rule:<cause>) for the
-- trained model. diagnose() is the interface; this is its PL/Python half, usable on its own
-- with a document saved earlier (a benchmark re-scoring stored incidents).
CREATE OR REPLACE FUNCTION pganalytics.root_cause_rules(p_inputs jsonb, p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module root_cause
import json
if p_inputs is None:
    plpy.error("root_cause_rules: inputs must not be null (pass diagnosis_inputs()' document)", sqlstate="22004")
inputs = json.loads(p_inputs)
options = json.loads(p_options) if p_options is not None else {}
if not isinstance(inputs, dict) or not isinstance(options, dict):
    plpy.error("root_cause_rules: inputs and options must be JSON objects", sqlstate="22023")
try:
    return json.dumps(root_cause.diagnose(inputs, options))
except ValueError as e:
    plpy.error("root_cause_rules: %s" % e, sqlstate="22023")  # invalid_parameter_value
$plpython$;
COMMENT ON FUNCTION pganalytics.root_cause_rules(jsonb, jsonb) IS
    'root-cause rules over a diagnosis_inputs() document: ranked causes, summary, features';
REVOKE ALL ON FUNCTION pganalytics.root_cause_rules(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.root_cause_rules(jsonb, jsonb) TO pganalytics_admin;
