-- Days-to-threshold alerts -> events in pganalytics.anomalies (source 'forecast'), beside the
-- detected anomalies: one event per (alert, subject) while its forecasts keep reaching the
-- limit. p_at is the evaluation's time (the newest data point it forecast from): an alert
-- that no event holds opens one (started_at = p_at); an open one is extended (last_at = p_at,
-- one more point, description and context from the newest forecast, the peak where the
-- confidence was highest); an open forecast event of the p_kinds evaluated that is not among
-- the alerts closes (ended_at = p_at). Idempotent: an evaluation at or before an event's
-- last_at changes nothing. Returns {"opened", "extended", "closed"}.
--   peak_value the value forecast from; peak_expected the limit; peak_score and severity the
--   confidence; context the forecast's dates, days left, recommendation.
CREATE OR REPLACE FUNCTION pganalytics.record_forecast_alerts(
    p_instance_id int, p_at timestamptz, p_kinds text[],
    p_alert text[], p_subject text[], p_current float8[], p_limit float8[], p_confidence float8[],
    p_description text[], p_context jsonb[])
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n        int := cardinality(p_alert);
    stamp    timestamptz := now();
    opened   int;
    extended int;
    closed   int;
BEGIN
    IF p_instance_id IS NULL OR p_at IS NULL OR p_kinds IS NULL THEN
        RAISE EXCEPTION 'record_forecast_alerts: instance, time and kinds must not be null' USING ERRCODE = '22023';
    END IF;
    IF cardinality(p_subject) <> n OR cardinality(p_current) <> n OR cardinality(p_limit) <> n
       OR cardinality(p_confidence) <> n OR cardinality(p_description) <> n OR cardinality(p_context) <> n THEN
        RAISE EXCEPTION 'record_forecast_alerts: the alert arrays must be as long as each other' USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pganalytics.record_anomalies'), p_instance_id);
    WITH a AS (
        SELECT * FROM unnest(p_alert, p_subject, p_current, p_limit, p_confidence, p_description, p_context)
                      AS u (alert, subject, current, lim, confidence, description, context)),
    ext AS (
        UPDATE pganalytics.anomalies e
        SET last_at = p_at, last_away_at = p_at, points = e.points + 1,
            peak_at = CASE WHEN a.confidence > e.peak_score THEN p_at ELSE e.peak_at END,
            peak_value = CASE WHEN a.confidence > e.peak_score THEN a.current ELSE e.peak_value END,
            peak_expected = CASE WHEN a.confidence > e.peak_score THEN a.lim ELSE e.peak_expected END,
            peak_score = greatest(e.peak_score, a.confidence), severity = greatest(e.severity, a.confidence),
            description = a.description, context = a.context, updated_at = stamp
        FROM a
        WHERE e.instance_id = p_instance_id AND e.source = 'forecast' AND e.ended_at IS NULL
          AND e.anomaly_type = a.alert AND e.subject = a.subject AND e.last_at < p_at
        RETURNING e.anomaly_id),
    opn AS (
        INSERT INTO pganalytics.anomalies
            (instance_id, anomaly_type, subject, source, started_at, last_at, last_away_at, points, peak_at,
             peak_value, peak_expected, peak_score, severity, description, context, created_at, updated_at)
        SELECT p_instance_id, a.alert, a.subject, 'forecast', p_at, p_at, p_at, 1, p_at,
               a.current, a.lim, a.confidence, a.confidence, a.description, a.context, stamp, stamp
        FROM a
        WHERE NOT EXISTS (SELECT FROM pganalytics.anomalies e
                          WHERE e.instance_id = p_instance_id AND e.source = 'forecast'
                            AND e.anomaly_type = a.alert AND e.subject = a.subject
                            AND (e.ended_at IS NULL OR e.started_at >= p_at))
        RETURNING 1),
    cls AS (
        UPDATE pganalytics.anomalies e
        SET ended_at = p_at, updated_at = stamp
        WHERE e.instance_id = p_instance_id AND e.source = 'forecast' AND e.ended_at IS NULL
          AND e.anomaly_type = ANY (p_kinds) AND e.last_at < p_at
          AND NOT EXISTS (SELECT FROM a WHERE a.alert = e.anomaly_type AND a.subject = e.subject)
        RETURNING 1)
    SELECT (SELECT count(*) FROM opn), (SELECT count(*) FROM ext), (SELECT count(*) FROM cls)
    INTO opened, extended, closed;
    RETURN jsonb_build_object('opened', opened, 'extended', extended, 'closed', closed);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.record_forecast_alerts(int, timestamptz, text[], text[], text[], float8[], float8[], float8[], text[], jsonb[]) FROM PUBLIC;
