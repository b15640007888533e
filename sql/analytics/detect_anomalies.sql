-- The seed's POST /ai/anomalies/detect: the anomaly events of one instance in the last
-- p_period (up to now), of the types p_metrics names (anomaly_types; NULL: all). Before
-- answering it scores the period afresh, so the answer does not wait for the live path: every
-- derived series of the wanted types (anomaly_inputs()) over the period, the 6 hours before
-- it (an episode already going when the period starts is found at its first point) and 2 days
-- before those to warm the detector up (as much of it as the 1m rollups hold; the detector
-- scores its first 100 points 0), all series in one pass (anomaly_event_scores(), the same
-- detector as anomaly_scores()); then it records what it found (record_anomalies(), source
-- 'detect': an episode the live path already has is not recorded twice) and returns every
-- stored event overlapping the period, the live path's included. Queries: the 10 with the
-- most execution time in the period, and those with an open event. The instance's newest
-- trained model (train_anomaly_model()), if any, is used as the live path uses it: fitted
-- profiles, thresholds and weights per series.
-- Errors (SQLSTATE 22023): an unknown instance, an unknown type (the known ones are listed),
-- a period not in (0, 31 days].
-- SECURITY DEFINER: it looks up instances and query statistics and writes events through
-- record_anomalies(), none of which the admin role may do directly.
-- depends: analytics/anomaly_types.sql
-- depends: analytics/anomaly_inputs.sql
-- depends: analytics/anomaly_event_scores.sql
-- depends: analytics/record_anomalies.sql
CREATE OR REPLACE FUNCTION pganalytics.detect_anomalies(
    p_instance text,
    p_metrics  text[]   DEFAULT NULL,
    p_period   interval DEFAULT interval '1 hour')
RETURNS TABLE (anomaly_id bigint, instance text, anomaly_type text, subject text,
               started_at timestamptz, ended_at timestamptz, severity float8, actual float8,
               expected float8, score float8, peak_at timestamptz, unit text, description text,
               source text, context jsonb)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    warmup      CONSTANT interval := interval '2 days';
    lookback    CONSTANT interval := interval '6 hours';
    top_queries CONSTANT int      := 10;
    iid      int;
    v_to     timestamptz := now();
    v_from   timestamptz;
    unknown  text;
    queries  bigint[];
    a_type   text[];
    a_subj   text[];
    a_ts     timestamptz[];
    a_val    float8[];
    a_exp    float8[];
    a_score  float8[];
    a_flag   boolean[];
    a_ctx    jsonb[];
    model    jsonb;
BEGIN
    IF p_instance IS NULL THEN
        RAISE EXCEPTION 'detect_anomalies: an instance name is required' USING ERRCODE = '22023';
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'detect_anomalies: no instance named %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = '22023', HINT = 'pganalytics targets add registers one';
    END IF;
    IF p_period IS NULL OR p_period <= interval '0' OR p_period > interval '31 days' THEN
        RAISE EXCEPTION 'detect_anomalies: the period must be more than 0 and at most 31 days, not %',
            coalesce(p_period::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(coalesce(pg_catalog.quote_literal(u.t), 'NULL'), ', ' ORDER BY u.t) INTO unknown
    FROM unnest(p_metrics) AS u(t)
    WHERE u.t IS NULL OR NOT EXISTS (SELECT FROM pganalytics.anomaly_types a WHERE a.anomaly_type = u.t);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'detect_anomalies: unknown anomaly type(s) %; known: %', unknown,
            (SELECT string_agg(a.anomaly_type, ', ' ORDER BY a.anomaly_type) FROM pganalytics.anomaly_types a)
            USING ERRCODE = '22023';
    END IF;
    v_from := v_to - p_period;

    -- Scoring every statement would cost a series each: the ones that matter in the period,
    -- and those whose open event must be able to close.
    IF p_metrics IS NULL OR 'execution_time_spike' = ANY (p_metrics) THEN
        queries := ARRAY(
            SELECT t.queryid FROM (
                SELECT d.queryid FROM pganalytics.query_stat_deltas d
                WHERE d.instance_id = iid AND d.collected_at >= v_from AND d.collected_at < v_to
                GROUP BY d.queryid ORDER BY sum(d.total_exec_time) DESC, d.queryid LIMIT top_queries) t
            UNION
            SELECT substr(e.subject, 9)::bigint FROM pganalytics.anomalies e
            WHERE e.instance_id = iid AND e.anomaly_type = 'execution_time_spike' AND e.ended_at IS NULL
              AND e.subject ~ '^queryid:-?[0-9]{1,19}$');
    END IF;

    SELECT to_jsonb(m) - 'warm_state' - 'summary' INTO model
    FROM pganalytics.anomaly_models m WHERE m.instance_id = iid ORDER BY m.version DESC LIMIT 1;

    WITH inp AS MATERIALIZED (
        SELECT x.anomaly_type, x.subject, x.bucket, x.value, x.context,
               dense_rank() OVER (ORDER BY x.anomaly_type, x.subject)::int AS k,
               row_number() OVER (ORDER BY x.anomaly_type, x.subject, x.bucket)::int AS i
        FROM pganalytics.anomaly_inputs(iid, v_from - lookback - warmup, v_to, p_metrics, queries) x),
    sc AS (
        SELECT s.i, s.expected, s.score, s.is_anomaly
        FROM pganalytics.anomaly_event_scores(
            ARRAY(SELECT inp.k FROM inp ORDER BY inp.i),
            ARRAY(SELECT extract(epoch FROM inp.bucket)::float8 FROM inp ORDER BY inp.i),
            ARRAY(SELECT inp.value FROM inp ORDER BY inp.i),
            extract(epoch FROM v_from - lookback)::float8, '{}'::jsonb,
            ARRAY(SELECT DISTINCT ON (inp.k) inp.anomaly_type || '/' || inp.subject FROM inp ORDER BY inp.k),
            model) s)
    SELECT array_agg(inp.anomaly_type ORDER BY inp.i), array_agg(inp.subject ORDER BY inp.i),
           array_agg(inp.bucket ORDER BY inp.i), array_agg(inp.value ORDER BY inp.i),
           array_agg(sc.expected ORDER BY inp.i), array_agg(sc.score ORDER BY inp.i),
           array_agg(sc.is_anomaly ORDER BY inp.i), array_agg(inp.context ORDER BY inp.i)
    INTO a_type, a_subj, a_ts, a_val, a_exp, a_score, a_flag, a_ctx
    FROM sc JOIN inp ON inp.i = sc.i;

    IF a_ts IS NOT NULL THEN
        PERFORM pganalytics.record_anomalies(iid, 'detect', a_type, a_subj, a_ts, a_val, a_exp, a_score,
                                             a_flag, a_ctx);
    END IF;

    RETURN QUERY
    SELECT e.anomaly_id, p_instance, e.anomaly_type, e.subject, e.started_at, e.ended_at, e.severity,
           e.peak_value, e.peak_expected, e.peak_score, e.peak_at, t.unit, e.description, e.source, e.context
    FROM pganalytics.anomalies e
    JOIN pganalytics.anomaly_types t ON t.anomaly_type = e.anomaly_type
    WHERE e.instance_id = iid
      AND (p_metrics IS NULL OR e.anomaly_type = ANY (p_metrics))
      AND e.started_at < v_to AND (e.ended_at IS NULL OR e.ended_at > v_from)
    ORDER BY e.started_at, e.anomaly_type, e.subject;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.detect_anomalies(text, text[], interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.detect_anomalies(text, text[], interval) TO pganalytics_admin;
