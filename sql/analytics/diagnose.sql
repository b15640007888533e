-- Why an instance was slow in [p_from, p_to): the causes (the fixed vocabulary of
-- plpython/root_cause.py) sorted by confidence, each with its evidence, recommendations, the
-- queries and objects involved, and a one-sentence summary; causes [] with a summary saying so
-- when nothing explains a problem. The baseline is the time just before the window
-- (diagnosis_inputs()); "features" is the evidence as numbers (what feedback stores). When a
-- root-cause model has been trained (train_root_cause_model()), the newest one is blended with
-- the rules ("model" says which version; each cause keeps its "rule_confidence").
-- p_options: min_confidence (default 0.2), use_model (default true; false: the rules alone).
-- depends: analytics/diagnosis_inputs.sql
-- depends: analytics/root_cause_rules.sql
-- depends: analytics/root_cause_model_scores.sql
CREATE OR REPLACE FUNCTION pganalytics.diagnose(
    p_instance text,
    p_from     timestamptz,
    p_to       timestamptz,
    p_options  jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inputs  jsonb;
    rules   jsonb;
    opts    jsonb;
    mver    int;
    mdl     jsonb;
BEGIN
    IF p_options IS NULL OR jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'diagnose: options must be a JSON object, got %', coalesce(p_options::text, 'NULL');
    END IF;
    IF p_options ? 'use_model' AND jsonb_typeof(p_options -> 'use_model') <> 'boolean' THEN
        RAISE EXCEPTION 'diagnose: use_model must be true or false, got %', p_options -> 'use_model';
    END IF;
    opts := p_options - 'use_model' - 'blend' - 'model';
    inputs := pganalytics.diagnosis_inputs(p_instance, p_from, p_to);
    rules := pganalytics.root_cause_rules(inputs, opts);
    IF coalesce((p_options ->> 'use_model')::boolean, true) THEN
        SELECT m.version, m.model INTO mver, mdl FROM pganalytics.root_cause_models m ORDER BY m.version DESC LIMIT 1;
        IF mver IS NOT NULL THEN
            rules := pganalytics.root_cause_rules(inputs, opts || jsonb_build_object(
                'blend', pganalytics.root_cause_model_scores(mdl, rules -> 'features'),
                'model', 'version ' || mver));
        END IF;
    END IF;
    RETURN jsonb_build_object('instance', p_instance, 'model', mver) || rules;
END
$$;
COMMENT ON FUNCTION pganalytics.diagnose(text, timestamptz, timestamptz, jsonb) IS
    'why the instance was slow in the window: causes by confidence with evidence and recommendations, and a summary';
REVOKE ALL ON FUNCTION pganalytics.diagnose(text, timestamptz, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.diagnose(text, timestamptz, timestamptz, jsonb) TO pganalytics_admin;
