-- Days-to-threshold alerts of one instance: each series of forecast_alert_inputs() (disk full,
-- connections exhausted, XID wraparound, a statement's latency past its SLA) is forecast
-- p_days ahead from its hourly history (options.history, default 4 weeks) and, where the
-- forecast reaches its limit with at least options.min_confidence (default 0.5), it is an
-- alert: the date it is predicted (the point forecast), the earliest date it could come (the
-- upper bound of the options.level interval, default 0.8), the confidence, and a
-- recommendation. Alerts are recorded as events in pganalytics.anomalies (source 'forecast',
-- record_forecast_alerts(): open while they last, closed when a later evaluation no longer
-- predicts them) unless options.record is false; the function returns them, most urgent first.
-- Sizes and XID age grow without seasons to speak of and are extrapolated with a linear trend
-- (a damped one would level off and never reach the limit); connections and latency use the
-- forecaster's default damped trend and daily/weekly seasons. A series with fewer than 10
-- hourly points is skipped (a NOTICE names it); the horizon is at most 10 x the history
-- (context.horizon_days says what was used). Run it from pg_cron hourly, or on demand.
-- Other options: disk_limit_bytes (where the store has no host disk metrics), sla_ms (the
-- latency SLA; also the instance label latency_sla_ms). An unknown option is an error.
-- depends: analytics/forecast_alert_inputs.sql
-- depends: analytics/forecast_crossing.sql
-- depends: analytics/record_forecast_alerts.sql
CREATE OR REPLACE FUNCTION pganalytics.forecast_alerts(p_instance text, p_days int DEFAULT 30,
                                                       p_options jsonb DEFAULT '{}')
RETURNS TABLE (alert text, subject text, current float8, limit_value float8, predicted_at timestamptz,
               earliest_at timestamptz, days_left float8, confidence float8, recommendation text,
               description text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    known    CONSTANT text[] := ARRAY['history', 'min_confidence', 'level', 'record', 'disk_limit_bytes', 'sla_ms'];
    kinds    CONSTANT text[] := ARRAY['disk_full', 'connections_exhausted', 'xid_wraparound', 'latency_sla_breach'];
    iid      int;
    unknown  text;
    history  interval;
    min_conf float8;
    lvl      float8;
    at_time  timestamptz;
    s        record;
    c        record;
    days     float8;
    rec      text;
    what     text;
    a_alert  text[] := '{}';
    a_subj   text[] := '{}';
    a_cur    float8[] := '{}';
    a_lim    float8[] := '{}';
    a_conf   float8[] := '{}';
    a_desc   text[] := '{}';
    a_ctx    jsonb[] := '{}';
    a_pred   timestamptz[] := '{}';
    a_early  timestamptz[] := '{}';
    a_days   float8[] := '{}';
    a_rec    text[] := '{}';
BEGIN
    IF p_instance IS NULL OR p_days IS NULL OR p_options IS NULL OR jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'forecast_alerts: instance, days and options (a JSON object) are required' USING ERRCODE = '22023';
    END IF;
    IF p_days NOT BETWEEN 1 AND 365 THEN
        RAISE EXCEPTION 'forecast_alerts: days must be 1 to 365, not %', p_days USING ERRCODE = '22023';
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'forecast_alerts: no instance named %', pg_catalog.quote_literal(p_instance) USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown FROM jsonb_object_keys(p_options) AS k WHERE NOT k = ANY (known);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'forecast_alerts: unknown option(s) %; known: %', unknown, array_to_string(known, ', ')
            USING ERRCODE = '22023';
    END IF;
    BEGIN
        history := coalesce(p_options ->> 'history', '4 weeks')::interval;
        min_conf := coalesce((p_options ->> 'min_confidence')::float8, 0.5);
        lvl := coalesce((p_options ->> 'level')::float8, 0.8);
        PERFORM (p_options ->> 'record')::boolean, (p_options ->> 'disk_limit_bytes')::float8, (p_options ->> 'sla_ms')::float8;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'forecast_alerts: bad option value in % (history: an interval; min_confidence, level: numbers in (0, 1); record: a boolean; disk_limit_bytes, sla_ms: numbers)',
            p_options USING ERRCODE = '22023';
    END;
    IF history NOT BETWEEN interval '1 hour' AND interval '400 days' OR NOT min_conf > 0 OR NOT min_conf <= 1
       OR NOT lvl > 0 OR NOT lvl < 1 THEN
        RAISE EXCEPTION 'forecast_alerts: history must be 1 hour to 400 days, min_confidence in (0, 1], level in (0, 1)'
            USING ERRCODE = '22023';
    END IF;

    FOR s IN
        SELECT i.alert, i.subject, array_agg(extract(epoch FROM i.ts)::float8 ORDER BY i.ts) AS epoch,
               array_agg(i.value ORDER BY i.ts) AS v, max(i.limit_value) AS lim, max(i.ts) AS last_ts
        FROM pganalytics.forecast_alert_inputs(p_instance, now() - history, now(),
                                               (p_options ->> 'disk_limit_bytes')::float8,
                                               (p_options ->> 'sla_ms')::float8) i
        WHERE i.value NOT IN ('NaN', 'infinity', '-infinity')
        GROUP BY i.alert, i.subject
        ORDER BY i.alert, i.subject
    LOOP
        at_time := greatest(at_time, s.last_ts);
        IF cardinality(s.epoch) < 10 THEN
            RAISE NOTICE 'forecast_alerts: % % skipped: % hourly points, at least 10 needed', s.alert, s.subject,
                cardinality(s.epoch);
            CONTINUE;
        END IF;
        SELECT * INTO c FROM pganalytics.forecast_crossing(s.epoch, s.v, p_days * 24, s.lim,
            jsonb_build_object('level', lvl, 'damped', s.alert IN ('connections_exhausted', 'latency_sla_breach')));
        CONTINUE WHEN c.confidence < min_conf;
        days := CASE WHEN c.predicted IS NOT NULL THEN greatest((c.predicted - c.last) / 86400.0, 0) END;
        IF c.current >= s.lim THEN
            days := 0;
        END IF;
        what := CASE s.alert
            WHEN 'disk_full' THEN CASE WHEN s.subject = 'databases' THEN 'the databases'' size' ELSE 'the disk ' || substr(s.subject, 6) END
            WHEN 'connections_exhausted' THEN 'connections'
            WHEN 'xid_wraparound' THEN 'the XID age of database ' || substr(s.subject, 9)
            ELSE 'the mean latency of query ' || substr(s.subject, 9) END;
        rec := CASE s.alert
            WHEN 'disk_full' THEN 'add storage or free space before then: drop unused indexes and partitions past retention, VACUUM FULL or pg_repack bloated tables, check that WAL is not retained by an inactive replication slot'
            WHEN 'connections_exhausted' THEN 'put a connection pooler (pgbouncer, transaction mode) in front, end idle sessions (idle_session_timeout, idle_in_transaction_session_timeout), or raise max_connections with the memory it takes'
            WHEN 'xid_wraparound' THEN 'run VACUUM (FREEZE) on the oldest tables of the database, end long transactions and stale prepared transactions or replication slots holding the horizon back, and check autovacuum keeps up (autovacuum_freeze_max_age, cost limits)'
            ELSE 'look at the statement''s plan and its recent changes (pganalytics.analyze_query_performance), its tables'' statistics and indexes, before its latency crosses the SLA' END;
        a_alert := a_alert || s.alert;
        a_subj := a_subj || s.subject;
        a_cur := a_cur || c.current;
        a_lim := a_lim || s.lim;
        a_conf := a_conf || c.confidence;
        a_pred := a_pred || to_timestamp(c.predicted);
        a_early := a_early || to_timestamp(c.earliest);
        a_days := a_days || days;
        a_rec := a_rec || rec;
        a_desc := a_desc || (initcap(left(what, 1)) || substr(what, 2)
            || CASE WHEN c.current >= s.lim THEN ' is past its limit already'
                    WHEN c.predicted IS NOT NULL THEN ' will reach its limit around '
                         || to_char(to_timestamp(c.predicted) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00') || ' UTC (in '
                         || round(days::numeric, 1) || ' days)'
                    ELSE ' may reach its limit as early as '
                         || to_char(to_timestamp(c.earliest) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00') || ' UTC' END
            || ' on instance ' || p_instance || ', confidence ' || round((100 * c.confidence)::numeric) || ' %');
        a_ctx := a_ctx || jsonb_strip_nulls(jsonb_build_object(
            'predicted_at', to_timestamp(c.predicted), 'earliest_at', to_timestamp(c.earliest),
            'days_left', round(days::numeric, 2), 'confidence', round(c.confidence::numeric, 4),
            'current', c.current, 'limit', s.lim, 'recommendation', rec, 'model', c.model,
            'horizon_days', round((c.horizon / 24.0)::numeric, 2), 'history_points', cardinality(s.epoch)));
    END LOOP;

    IF at_time IS NOT NULL AND coalesce((p_options ->> 'record')::boolean, true) THEN
        PERFORM pganalytics.record_forecast_alerts(iid, at_time, kinds, a_alert, a_subj, a_cur, a_lim, a_conf,
                                                   a_desc, a_ctx);
    END IF;
    RETURN QUERY
        SELECT u.alert, u.subject, u.cur, u.lim, u.pred, u.early, u.days, u.conf, u.rec, u.descr
        FROM unnest(a_alert, a_subj, a_cur, a_lim, a_pred, a_early, a_days, a_conf, a_rec, a_desc)
             AS u (alert, subject, cur, lim, pred, early, days, conf, rec, descr)
        ORDER BY coalesce(u.days, 'infinity'), u.early, u.conf DESC;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.forecast_alerts(text, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.forecast_alerts(text, int, jsonb) TO pganalytics_admin;
