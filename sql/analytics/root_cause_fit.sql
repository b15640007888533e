-- The PL/Python half of train_root_cause_model() (plpython/root_cause_model.py): trains the
-- model on the feedback rows given ({"features", "cause", "confirmed", "group"} each) and
-- evaluates it on held-out incidents (k folds over groups). Returns {"model", "evaluation"}.
CREATE OR REPLACE FUNCTION pganalytics.root_cause_fit(p_rows jsonb, p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpython3u
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module root_cause_model
import json
rows = json.loads(p_rows) if p_rows is not None else None
options = json.loads(p_options) if p_options is not None else {}
if not isinstance(rows, list) or not isinstance(options, dict):
    plpy.error("root_cause_fit: rows must be a JSON array and options an object", sqlstate="22023")
unknown = sorted(set(options) - set(root_cause_model.DEFAULTS))
if unknown:
    plpy.error("root_cause_fit: unknown option(s) %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(root_cause_model.DEFAULTS))),
               sqlstate="22023")
try:
    return json.dumps({"model": root_cause_model.train(rows, options),
                       "evaluation": root_cause_model.evaluate(rows, options)})
except (ValueError, KeyError, TypeError) as e:
    plpy.error("root_cause_fit: %s" % e, sqlstate="22023")
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.root_cause_fit(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.root_cause_fit(jsonb, jsonb) TO pganalytics_admin;
