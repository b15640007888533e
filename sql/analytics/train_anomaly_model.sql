-- depends: analytics/anomaly_inputs.sql
-- depends: analytics/anomaly_fit.sql
-- Train an instance's anomaly model: per (type, subject) of its derived metrics
-- (anomaly_inputs()), an hour-of-week profile, a threshold and per-detector weights fitted on
-- the history (anomaly_fit(), plpython/anomaly.py fit_model(); the history is taken as mostly
-- normal: a benign nightly batch job stops alerting, a detector that cried wolf on it is
-- scaled down), stored as a new version in anomaly_models, which the live path uses from its
-- next minute. The history ends where the instance's rollups end, so the same stored data
-- trains the same model: training again on it adds no version and says so ("unchanged").
-- Returns {"instance", "version", "unchanged", "keys", "data_from", "data_to", "summary"}.
CREATE OR REPLACE FUNCTION pganalytics.train_anomaly_model(p_instance text, p_history interval DEFAULT '14 days',
                                                           p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    iid     int;
    until   timestamptz;
    since   timestamptz;
    pkeys   text[];
    pts     float8[];
    pvals   float8[];
    digest  text;
    latest  record;
    fitted  record;
    version int;
BEGIN
    IF p_instance IS NULL OR p_history IS NULL THEN
        RAISE EXCEPTION 'train_anomaly_model: instance and history must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF p_history < interval '1 hour' OR p_history > interval '400 days' THEN
        RAISE EXCEPTION 'train_anomaly_model: history must be between 1 hour and 400 days, not %', p_history
            USING ERRCODE = '22023';
    END IF;
    IF p_options IS NULL OR jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'train_anomaly_model: options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT i.instance_id, p.rolled_until INTO iid, until
    FROM pganalytics.instances i LEFT JOIN pganalytics.rollup_progress p USING (instance_id)
    WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'train_anomaly_model: no instance named %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = '22023';
    END IF;
    IF until IS NULL THEN
        RAISE EXCEPTION 'train_anomaly_model: instance % has no rolled-up data yet', p_instance
            USING ERRCODE = '22023', HINT = 'maintain() rolls up complete minutes';
    END IF;
    since := until - p_history;
    SELECT array_agg(k ORDER BY k, t), array_agg(t ORDER BY k, t), array_agg(v ORDER BY k, t),
           encode(sha256(convert_to(p_options::text, 'UTF8')
                         || coalesce(string_agg(convert_to(k, 'UTF8') || '\x00'::bytea || float8send(t) || float8send(v),
                                                ''::bytea ORDER BY k, t), ''::bytea)), 'hex')
    INTO pkeys, pts, pvals, digest
    FROM (SELECT a.anomaly_type || '/' || a.subject AS k, extract(epoch FROM a.bucket)::float8 AS t, a.value AS v
          FROM pganalytics.anomaly_inputs(iid, since, until) a
          WHERE a.value IS NOT NULL AND a.value NOT IN ('NaN', 'infinity', '-infinity')) x;
    IF pkeys IS NULL THEN
        RAISE EXCEPTION 'train_anomaly_model: instance % has no derived metrics in the % before % to train on',
            p_instance, p_history, until USING ERRCODE = '22023';
    END IF;
    SELECT m.version, m.digest, m.keys, m.summary INTO latest
    FROM pganalytics.anomaly_models m WHERE m.instance_id = iid ORDER BY m.version DESC LIMIT 1;
    IF latest.digest IS NOT DISTINCT FROM digest THEN
        RETURN jsonb_build_object('instance', p_instance, 'version', latest.version, 'unchanged', true,
                                  'keys', to_jsonb(latest.keys), 'data_from', since, 'data_to', until,
                                  'summary', latest.summary);
    END IF;
    SELECT * INTO fitted FROM pganalytics.anomaly_fit(pkeys, pts, pvals, p_options);
    version := coalesce(latest.version, 0) + 1;
    INSERT INTO pganalytics.anomaly_models (instance_id, version, data_from, data_to, keys, week_profile,
                                            thresholds, weights, warm_state, detectors, summary, digest)
    VALUES (iid, version, since, until, fitted.keys, fitted.week_profile, fitted.thresholds, fitted.weights,
            fitted.warm_state,
            fitted.detectors, fitted.summary, digest);
    RETURN jsonb_build_object('instance', p_instance, 'version', version, 'unchanged', false,
                              'keys', to_jsonb(fitted.keys), 'data_from', since, 'data_to', until,
                              'summary', fitted.summary);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.train_anomaly_model(text, interval, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.train_anomaly_model(text, interval, jsonb) TO pganalytics_admin;
