-- Why an instance was slow in [p_from, p_to): the causes (the fixed vocabulary of
-- plpython/root_cause.py) sorted by confidence, each with its evidence, recommendations, the
-- queries and objects involved, and a one-sentence summary; causes [] with a summary saying so
-- when nothing explains a problem. The baseline is the time just before the window
-- (diagnosis_inputs()); "features" is the evidence as numbers (what feedback stores).
-- p_options: min_confidence (default 0.2).
-- depends: analytics/diagnosis_inputs.sql
-- depends: analytics/root_cause_rules.sql
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
BEGIN
    IF p_options IS NULL OR jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'diagnose: options must be a JSON object, got %', coalesce(p_options::text, 'NULL');
    END IF;
    RETURN jsonb_build_object('instance', p_instance)
        || pganalytics.root_cause_rules(pganalytics.diagnosis_inputs(p_instance, p_from, p_to), p_options);
END
$$;
COMMENT ON FUNCTION pganalytics.diagnose(text, timestamptz, timestamptz, jsonb) IS
    'why the instance was slow in the window: causes by confidence with evidence and recommendations, and a summary';
REVOKE ALL ON FUNCTION pganalytics.diagnose(text, timestamptz, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.diagnose(text, timestamptz, timestamptz, jsonb) TO pganalytics_admin;
