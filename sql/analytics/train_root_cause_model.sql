-- Train the fleet's root-cause model on every verdict in root_cause_feedback
-- (root_cause_fit(), plpython/root_cause_model.py) and store it as a new version, which
-- diagnose() blends with its rules from then on. The same feedback and options give the same
-- model: training again adds no version ("unchanged": true). Refuses with fewer than 10
-- verdicts or 2 causes: a model of a handful of incidents would only add noise to the rules.
-- Returns {"version", "unchanged", "examples", "causes": {cause: verdicts}, "evaluation":
-- held-out top-1 of the rules alone and of rules + model}.
-- depends: analytics/root_cause_fit.sql
CREATE OR REPLACE FUNCTION pganalytics.train_root_cause_model(p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_min_examples CONSTANT int := 10;
    rows_    jsonb;
    n        int;
    ncauses  int;
    digest_  text;
    existing int;
    fitted   jsonb;
    version_ int;
    per      jsonb;
BEGIN
    IF p_options IS NULL OR jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'train_root_cause_model: options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT jsonb_agg(jsonb_build_object('features', f.features, 'cause', f.cause, 'confirmed', f.confirmed,
                                        'group', f.instance_id || '/' || f.window_from || '/' || f.window_to)
                     ORDER BY f.instance_id, f.feedback_id),
           count(*), count(DISTINCT f.cause),
           encode(sha256(convert_to(p_options::text || coalesce(string_agg(
               f.instance_id || '|' || f.feedback_id || '|' || f.cause || '|' || f.confirmed || '|' || f.features::text,
               E'\n' ORDER BY f.instance_id, f.feedback_id), ''), 'UTF8')), 'hex')
    INTO rows_, n, ncauses, digest_
    FROM pganalytics.root_cause_feedback f;
    IF n < c_min_examples OR ncauses < 2 THEN
        RAISE EXCEPTION 'train_root_cause_model: % verdicts on % causes; at least % verdicts on 2 causes are needed',
            n, ncauses, c_min_examples USING ERRCODE = '22023',
            HINT = 'record verdicts with record_root_cause_feedback()';
    END IF;
    SELECT jsonb_object_agg(x.cause, x.k) INTO per
    FROM (SELECT f.cause, count(*) AS k FROM pganalytics.root_cause_feedback f GROUP BY 1) x;
    SELECT m.version INTO existing FROM pganalytics.root_cause_models m WHERE m.digest = digest_;
    IF existing IS NOT NULL THEN
        RETURN (SELECT jsonb_build_object('version', m.version, 'unchanged', true, 'examples', m.examples,
                                          'causes', per, 'evaluation', m.evaluation)
                FROM pganalytics.root_cause_models m WHERE m.version = existing);
    END IF;
    fitted := pganalytics.root_cause_fit(rows_, p_options);
    SELECT coalesce(max(m.version), 0) + 1 INTO version_ FROM pganalytics.root_cause_models m;
    INSERT INTO pganalytics.root_cause_models (version, examples, model, evaluation, digest)
    VALUES (version_, n, fitted -> 'model', fitted -> 'evaluation', digest_);
    RETURN jsonb_build_object('version', version_, 'unchanged', false, 'examples', n, 'causes', per,
                              'evaluation', fitted -> 'evaluation');
END
$$;
COMMENT ON FUNCTION pganalytics.train_root_cause_model(jsonb) IS
    'train the root-cause model on the verdicts in root_cause_feedback; diagnose() blends the newest with its rules';
REVOKE ALL ON FUNCTION pganalytics.train_root_cause_model(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.train_root_cause_model(jsonb) TO pganalytics_admin;
