-- The hourly series the days-to-threshold alerts (forecast_alerts()) forecast, with the limit
-- each must stay under, for one instance over [p_from, p_to):
--   disk_full              per data directory: host_disk_used_bytes against the filesystem's
--                          host_disk_total_bytes (the collector has them on the database host);
--                          elsewhere the databases' total size against a configured limit
--                          (p_disk_limit, the option or the instance label disk_limit_bytes)
--   connections_exhausted  backends connected (the sum of each database's highest numbackends in the
--                          hour) against the
--                          connections ordinary roles may open (max_connections less the reserved
--                          ones, from the settings history), or the pooler's limit when lower
--   xid_wraparound         per database, the hour's highest age(datfrozenxid) against the point
--                          where PostgreSQL stops assigning XIDs (2^31 less 3 million)
--   latency_sla_breach     per statement (the 20 with the most execution time), the hour's mean
--                          execution time per call against p_sla_ms (the option or the instance
--                          label latency_sla_ms); none without an SLA
-- Rows (alert, subject, ts, value, limit_value), ordered; a kind without its inputs has no rows.
-- depends: store/read_series.sql
CREATE OR REPLACE FUNCTION pganalytics.forecast_alert_inputs(p_instance text, p_from timestamptz, p_to timestamptz,
                                                             p_disk_limit float8, p_sla_ms float8)
RETURNS TABLE (alert text, subject text, ts timestamptz, value float8, limit_value float8)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    iid      int;
    labels   jsonb;
    usable   float8;
    xid_stop CONSTANT float8 := 2147483648.0 - 3000000;
BEGIN
    SELECT i.instance_id, i.labels INTO iid, labels FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'forecast_alert_inputs: no instance named %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = '22023';
    END IF;

    IF EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = iid AND s.metric = 'host_disk_used_bytes') THEN
        RETURN QUERY
            WITH used AS (SELECT r.labels ->> 'path' AS path, r.ts, r.value
                          FROM pganalytics.read_series(p_instance, 'host_disk_used_bytes', p_from, p_to, '1h') r),
            total AS (SELECT DISTINCT ON (r.labels ->> 'path') r.labels ->> 'path' AS path, r.value
                      FROM pganalytics.read_series(p_instance, 'host_disk_total_bytes', p_from, p_to, '1h') r
                      ORDER BY r.labels ->> 'path', r.ts DESC)
            SELECT 'disk_full', 'path:' || u.path, u.ts, u.value, t.value
            FROM used u JOIN total t USING (path)
            WHERE u.value IS NOT NULL AND t.value > 0;
    ELSE
        p_disk_limit := coalesce(p_disk_limit, CASE WHEN labels ->> 'disk_limit_bytes' ~ '^[0-9]{1,18}$'
                                                    THEN (labels ->> 'disk_limit_bytes')::float8 END);
        IF p_disk_limit > 0 AND EXISTS (SELECT FROM pganalytics.series s
                                        WHERE s.instance_id = iid AND s.metric = 'pg_database_size_bytes') THEN
            RETURN QUERY
                SELECT 'disk_full', 'databases', r.ts, sum(r.value), p_disk_limit
                FROM pganalytics.read_series(p_instance, 'pg_database_size_bytes', p_from, p_to, '1h') r
                GROUP BY r.ts HAVING count(r.value) > 0;
        END IF;
    END IF;

    -- each setting's newest value (the defaults where the history has none)
    SELECT max(l.v) FILTER (WHERE l.name = 'max_connections')
           - coalesce(max(l.v) FILTER (WHERE l.name = 'superuser_reserved_connections'), 3)
           - coalesce(max(l.v) FILTER (WHERE l.name = 'reserved_connections'), 0)
    INTO usable
    FROM (SELECT DISTINCT ON (h.name) h.name, h.setting::float8 AS v
          FROM pganalytics.settings_history h
          WHERE h.instance_id = iid AND h.setting ~ '^[0-9]{1,9}$'
            AND h.name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
          ORDER BY h.name, h.valid_from DESC) l;
    IF labels ->> 'pooler_max_connections' ~ '^[0-9]{1,9}$' THEN
        usable := least(coalesce(usable, 'infinity'), (labels ->> 'pooler_max_connections')::float8);
    END IF;
    IF usable > 0 AND EXISTS (SELECT FROM pganalytics.series s
                              WHERE s.instance_id = iid AND s.metric = 'pg_database_numbackends') THEN
        RETURN QUERY
            SELECT 'connections_exhausted', '', r.ts, sum(r.max), usable
            FROM pganalytics.read_series(p_instance, 'pg_database_numbackends', p_from, p_to, '1h') r
            GROUP BY r.ts HAVING count(r.max) > 0;
    END IF;

    IF EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = iid AND s.metric = 'pg_database_xid_age') THEN
        RETURN QUERY
            SELECT 'xid_wraparound', 'datname:' || (r.labels ->> 'datname'), r.ts, r.max, xid_stop
            FROM pganalytics.read_series(p_instance, 'pg_database_xid_age', p_from, p_to, '1h') r
            WHERE r.max IS NOT NULL;
    END IF;

    p_sla_ms := coalesce(p_sla_ms, CASE WHEN labels ->> 'latency_sla_ms' ~ '^[0-9]+(\.[0-9]+)?$'
                                        THEN (labels ->> 'latency_sla_ms')::float8 END);
    IF p_sla_ms > 0 THEN
        RETURN QUERY
            WITH top AS MATERIALIZED (
                SELECT d.queryid FROM pganalytics.query_stat_deltas d
                WHERE d.instance_id = iid AND d.collected_at >= p_from AND d.collected_at < p_to
                GROUP BY d.queryid ORDER BY sum(d.total_exec_time) DESC LIMIT 20)
            SELECT 'latency_sla_breach', 'queryid:' || d.queryid, date_trunc('hour', d.collected_at),
                   sum(d.total_exec_time) / sum(d.calls), p_sla_ms
            FROM pganalytics.query_stat_deltas d
            WHERE d.instance_id = iid AND d.queryid IN (SELECT t.queryid FROM top t)
              AND d.collected_at >= p_from AND d.collected_at < p_to
            GROUP BY d.queryid, date_trunc('hour', d.collected_at)
            HAVING sum(d.calls) > 0;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.forecast_alert_inputs(text, timestamptz, timestamptz, float8, float8) FROM PUBLIC;
