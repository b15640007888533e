-- One anomaly event explained, as one JSON document a person can read: the event, the
-- statements that added the most execution time over its span (calls x time per call,
-- against the time before it), the metric that led it (the strongest significant lagged
-- correlation of the event's metric with the instance's others over the hour before, with the
-- leader named), and diagnose()'s causes for its span. The span is started_at to ended_at
-- (an open event: to its last bucket + 1 minute).
-- depends: analytics/diagnose.sql
-- depends: analytics/correlations.sql
CREATE OR REPLACE FUNCTION pganalytics.explain_incident(p_anomaly_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER  -- read-only; lets admins call it without table privileges
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a          pganalytics.anomalies;
    inst       text;
    w_to       timestamptz;
    verdict    jsonb;
    focus      text;
    candidates text[];
    have       text[];
    j_leaders  jsonb := '[]';
    note       text;
BEGIN
    IF p_anomaly_id IS NULL THEN
        RAISE EXCEPTION 'explain_incident: anomaly_id must not be null';
    END IF;
    SELECT * INTO a FROM pganalytics.anomalies x WHERE x.anomaly_id = p_anomaly_id;
    IF a.anomaly_id IS NULL THEN
        RAISE EXCEPTION 'explain_incident: no anomaly %', p_anomaly_id;
    END IF;
    SELECT i.name INTO inst FROM pganalytics.instances i WHERE i.instance_id = a.instance_id;
    w_to := coalesce(a.ended_at, a.last_at + interval '1 minute');
    verdict := pganalytics.diagnose(inst, a.started_at, w_to);

    -- The event's own metric as correlations() names it, and the candidates that may lead it.
    focus := CASE a.anomaly_type
        WHEN 'execution_time_spike' THEN 'query_latency' || CASE WHEN a.subject LIKE 'queryid:%'
                                         THEN '{queryid=' || substr(a.subject, 9) || '}' ELSE '' END
        WHEN 'cache_hit_rate_drop' THEN 'pg_database_blks_read'
        WHEN 'lock_contention_increase' THEN 'lock_waits'
        WHEN 'connection_pool_saturation' THEN 'pg_database_numbackends'
        WHEN 'high_io_wait' THEN 'host_cpu_iowait_ratio'
        WHEN 'high_cpu_usage' THEN 'host_cpu_busy_ratio'
        WHEN 'memory_pressure' THEN 'host_memory_available_bytes'
        WHEN 'replication_lag' THEN 'pg_replication_replay_lag_bytes'
        WHEN 'temp_spill' THEN 'pg_database_temp_bytes'
        WHEN 'deadlocks' THEN 'pg_database_deadlocks'
        WHEN 'checkpoint_pressure' THEN 'pg_checkpointer_num_requested'
        WHEN 'xid_wraparound_risk' THEN 'pg_database_xid_age'
    END;
    SELECT coalesce(array_agg(DISTINCT s.metric), '{}') INTO have
    FROM pganalytics.series s
    WHERE s.instance_id = a.instance_id
      AND s.metric IN ('pg_database_blks_read', 'pg_database_numbackends', 'host_cpu_iowait_ratio',
                       'host_cpu_busy_ratio', 'host_memory_available_bytes', 'pg_database_temp_bytes',
                       'pg_database_xact_commit', 'pg_checkpointer_num_requested', 'pg_wal_wal_bytes',
                       'pg_replication_replay_lag_bytes', 'pg_database_deadlocks', 'pg_database_xid_age');
    candidates := ARRAY['query_latency', 'query_calls', 'lock_waits'] || have;
    IF focus IS NOT NULL AND (focus LIKE 'query_latency%' OR focus = 'lock_waits' OR focus = ANY (have)) THEN
        BEGIN
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'metric', CASE WHEN c.x = focus THEN c.y ELSE c.x END, 'r', round(c.r_at_lag::numeric, 3),
                       'lead', c.lag, 'insight', c.insight) ORDER BY abs(c.r_at_lag) DESC), '[]')
            INTO j_leaders
            FROM (SELECT * FROM pganalytics.correlations(
                      inst, ARRAY[focus] || array_remove(candidates, focus),
                      least(w_to - a.started_at + interval '1 hour', interval '1 day'),
                      jsonb_build_object('to', w_to)) c
                  WHERE (c.x = focus OR c.y = focus) AND c.significant AND c.leader IS NOT NULL
                    AND c.leader <> focus
                  ORDER BY abs(c.r_at_lag) DESC LIMIT 3) c;
        EXCEPTION WHEN invalid_parameter_value THEN
            -- too little data to correlate (a new instance, a short span): said, not failed
            GET STACKED DIAGNOSTICS note = MESSAGE_TEXT;
        END;
    END IF;

    RETURN jsonb_build_object(
        'anomaly', jsonb_build_object('anomaly_id', a.anomaly_id, 'instance', inst, 'type', a.anomaly_type,
                                      'subject', a.subject, 'started_at', a.started_at, 'ended_at', a.ended_at,
                                      'severity', a.severity, 'description', a.description),
        'window', verdict -> 'window',
        'contributors', verdict -> 'contributors',
        'leading_metrics', j_leaders,
        'correlation_note', note,
        'causes', verdict -> 'causes',
        'summary', verdict ->> 'summary');
END
$$;
COMMENT ON FUNCTION pganalytics.explain_incident(bigint) IS
    'an anomaly event explained: the statements that added most time, the metric that led it, and the diagnosed causes';
REVOKE ALL ON FUNCTION pganalytics.explain_incident(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.explain_incident(bigint) TO pganalytics_admin;
