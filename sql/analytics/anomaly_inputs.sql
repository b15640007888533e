-- The derived metric of every named anomaly type (anomaly_types) of one instance, one value per
-- complete 1-minute bucket in [p_from, p_to), from what the store holds: rows ordered by
-- (anomaly_type, subject, bucket), as record_anomalies() takes them. subject says what a row
-- is about: '' for the instance, 'datname:<db>', 'queryid:<id>', 'replica:<app>@<addr>',
-- 'slot:<name>'. context carries what a person wants next to the value (the counts behind
-- a ratio, the limit used).
--
-- Where each comes from (counters as deltas of consecutive 1m rollups, a reset counting from
-- zero, no rate across a gap of more than 15 minutes; gauges as the minute's mean):
--   cache_hit_rate_drop        pg_database_blks_hit / (blks_hit + blks_read) per database,
--                              minutes with >= 100 block accesses (fewer say nothing)
--   temp_spill, deadlocks      pg_database_temp_bytes per second, pg_database_deadlocks per
--                              minute, per database
--   xid_wraparound_risk        pg_database_xid_age / 2^31 per database (slow cadence: a
--                              minute without a sample has no row)
--   connection_pool_saturation the sum of pg_database_numbackends over the usable connections:
--                              max_connections - superuser_reserved_connections -
--                              reserved_connections valid in that minute (settings_history
--                              holds non-default values only, so an absent one is the
--                              default), or the instance label pooler_max_connections when
--                              lower (the store collects nothing from poolers: an operator
--                              states the limit with `targets add --label`). No rows for an
--                              instance with no settings history at all (limit unknown).
--   checkpoint_pressure        pg_checkpointer_num_requested over the 15 minutes up to the
--                              bucket, per hour (a minute is too short: checkpoints take minutes)
--   replication_lag            pg_replication_replay_lag_bytes per replica (primary side),
--                              pg_slot_retained_bytes per slot, pg_recovery_receive_replay_lag_bytes
--                              ('' on a standby)
--   lock_contention_increase   lock_waits rows (kind lock_wait) of the minute per collection
--                              cycle (pg_up's sample count): zero when nobody waited, but only
--                              for an instance whose wait-event sampling runs (wait_samples
--                              within the day before), else a zero would be invented
--   execution_time_spike       per queryid: sum(total_exec_time) / sum(calls) of the
--                              query_stat_deltas collected in the minute (every database,
--                              user and toplevel flag of the queryid); p_queryids limits the
--                              queries read (NULL: every query that ran)
--   high_io_wait, high_cpu_usage, memory_pressure
--                              host_cpu_iowait_ratio, host_cpu_busy_ratio,
--                              1 - host_memory_available_bytes / host_memory_total_bytes:
--                              HOST-DEPENDENT, only when the collector runs on the database
--                              host (collector/host.py); elsewhere these types have no rows.
-- A minute is complete once maintain() rolled it up (rollup_progress): later minutes have no
-- row yet, for every type, so a partial minute never reads as a drop. p_types limits the
-- types (NULL: all; an unknown name is an error).
-- SECURITY DEFINER: it reads the store's tables (series, rollups, query deltas, settings),
-- which the admin role may not read directly; fully qualified names, pinned search_path.
-- depends: analytics/anomaly_types.sql
CREATE OR REPLACE FUNCTION pganalytics.anomaly_inputs(
    p_instance_id int,
    p_from        timestamptz,
    p_to          timestamptz,
    p_types       text[]   DEFAULT NULL,
    p_queryids    bigint[] DEFAULT NULL)
RETURNS TABLE (anomaly_type text, subject text, bucket timestamptz, value float8, context jsonb)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    origin    CONSTANT timestamptz := timestamptz '2001-01-01 00:00:00+00';
    t_from    timestamptz;
    t_to      timestamptz;
    unknown   text;
    sampling  boolean;
    settings  boolean;
    pooler    float8;
    metrics   text[];
BEGIN
    IF p_instance_id IS NULL OR p_from IS NULL OR p_to IS NULL THEN
        RAISE EXCEPTION 'anomaly_inputs: instance id, from and to must not be null' USING ERRCODE = '22023';
    END IF;
    IF p_to <= p_from OR p_to - p_from > interval '40 days' THEN
        RAISE EXCEPTION 'anomaly_inputs: the range % .. % must be forward and at most 40 days', p_from, p_to
            USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(u.t, ', ' ORDER BY u.t) INTO unknown
    FROM unnest(p_types) AS u(t)
    WHERE u.t IS NULL OR NOT EXISTS (SELECT FROM pganalytics.anomaly_types a WHERE a.anomaly_type = u.t);
    IF unknown IS NOT NULL OR array_position(p_types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'anomaly_inputs: unknown anomaly type(s) %; known: %', coalesce(unknown, 'NULL'),
            (SELECT string_agg(a.anomaly_type, ', ' ORDER BY a.anomaly_type) FROM pganalytics.anomaly_types a)
            USING ERRCODE = '22023';
    END IF;
    -- The first whole bucket at or after p_from; nothing past the last rolled-up minute.
    t_from := date_bin('1 minute', p_from - interval '1 microsecond', origin) + interval '1 minute';
    SELECT least(p_to, p.rolled_until) INTO t_to FROM pganalytics.rollup_progress p WHERE p.instance_id = p_instance_id;
    IF t_to IS NULL OR t_to <= t_from THEN
        RETURN;
    END IF;
    -- The store's metrics each wanted type reads (a type not asked for reads nothing).
    metrics := ARRAY(
        SELECT m.metric FROM (VALUES
            ('cache_hit_rate_drop', 'pg_database_blks_hit'), ('cache_hit_rate_drop', 'pg_database_blks_read'),
            ('temp_spill', 'pg_database_temp_bytes'), ('temp_spill', 'pg_database_temp_files'),
            ('deadlocks', 'pg_database_deadlocks'),
            ('xid_wraparound_risk', 'pg_database_xid_age'),
            ('connection_pool_saturation', 'pg_database_numbackends'),
            ('checkpoint_pressure', 'pg_checkpointer_num_requested'),
            ('checkpoint_pressure', 'pg_checkpointer_num_timed'),
            ('checkpoint_pressure', 'pg_checkpointer_buffers_written'),
            ('high_io_wait', 'host_cpu_iowait_ratio'),
            ('high_cpu_usage', 'host_cpu_busy_ratio'),
            ('memory_pressure', 'host_memory_available_bytes'), ('memory_pressure', 'host_memory_total_bytes'),
            ('replication_lag', 'pg_replication_replay_lag_bytes'), ('replication_lag', 'pg_replication_replay_lag_s'),
            ('replication_lag', 'pg_slot_retained_bytes'), ('replication_lag', 'pg_recovery_receive_replay_lag_bytes'),
            ('lock_contention_increase', 'pg_up')) AS m (anomaly_type, metric)
        WHERE p_types IS NULL OR m.anomaly_type = ANY (p_types));
    IF p_types IS NULL OR 'lock_contention_increase' = ANY (p_types) THEN
        sampling := EXISTS (SELECT FROM pganalytics.wait_samples w
                            WHERE w.instance_id = p_instance_id
                              AND w.collected_at >= t_from - interval '1 day' AND w.collected_at < t_to);
    END IF;
    IF p_types IS NULL OR 'connection_pool_saturation' = ANY (p_types) THEN
        settings := EXISTS (SELECT FROM pganalytics.settings_history h WHERE h.instance_id = p_instance_id);
        SELECT CASE WHEN i.labels ->> 'pooler_max_connections' ~ '^[0-9]{1,9}$'
                    THEN (i.labels ->> 'pooler_max_connections')::float8 END
        INTO pooler FROM pganalytics.instances i WHERE i.instance_id = p_instance_id;
    END IF;

    RETURN QUERY
    WITH sel AS MATERIALIZED (
        SELECT s.series_id, s.metric, s.labels, s.kind
        FROM pganalytics.series s
        WHERE s.instance_id = p_instance_id AND s.metric = ANY (metrics)),
    -- 30 minutes before the range: the previous bucket of each counter, and the checkpoints'
    -- 15-minute window of the range's first buckets.
    pts AS MATERIALIZED (
        SELECT x.metric, x.labels, x.bucket, x.mean, x.n, x.delta,
               x.delta / nullif(x.secs, 0) AS rate
        FROM (SELECT sel.metric, sel.labels, r.bucket, r.sum / r.n AS mean, r.n,
                     CASE WHEN sel.kind = 'counter' AND r.bucket - lag(r.bucket) OVER w <= interval '15 minutes' THEN
                         r.last - CASE WHEN r.last >= lag(r.last) OVER w THEN lag(r.last) OVER w ELSE 0 END
                     END AS delta,
                     extract(epoch FROM r.bucket - lag(r.bucket) OVER w)::float8 AS secs
              FROM sel
              JOIN pganalytics.rollups_1m r ON r.instance_id = p_instance_id AND r.series_id = sel.series_id
              WHERE r.bucket >= t_from - interval '30 minutes' AND r.bucket < t_to
              WINDOW w AS (PARTITION BY r.series_id ORDER BY r.bucket)) x),
    db AS (
        SELECT p.labels ->> 'datname' AS datname, p.bucket,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_blks_hit') AS hit,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_blks_read') AS rd,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_temp_bytes') AS temp_bytes,
               sum(p.delta) FILTER (WHERE p.metric = 'pg_database_temp_files') AS temp_files,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_deadlocks') * 60 AS deadlocks,
               avg(p.mean) FILTER (WHERE p.metric = 'pg_database_xid_age') AS xid_age,
               sum(p.mean) FILTER (WHERE p.metric = 'pg_database_numbackends') AS backends
        FROM pts p
        WHERE p.metric LIKE 'pg\_database\_%' AND p.bucket >= t_from
        GROUP BY 1, 2),
    conn AS (
        SELECT d.bucket, sum(d.backends) AS used
        FROM db d WHERE d.backends IS NOT NULL AND settings
        GROUP BY d.bucket),
    conn_limit AS (
        SELECT c.bucket, c.used, m.max_conn, m.max_conn - m.su_reserved - m.reserved AS usable
        FROM conn c
        CROSS JOIN LATERAL (
            SELECT coalesce(max(h.setting::float8) FILTER (WHERE h.name = 'max_connections'), 100) AS max_conn,
                   coalesce(max(h.setting::float8) FILTER (WHERE h.name = 'superuser_reserved_connections'), 3) AS su_reserved,
                   coalesce(max(h.setting::float8) FILTER (WHERE h.name = 'reserved_connections'), 0) AS reserved
            FROM pganalytics.settings_history h
            WHERE h.instance_id = p_instance_id
              AND h.name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
              AND h.valid_from < c.bucket + interval '1 minute'
              AND (h.valid_to IS NULL OR h.valid_to > c.bucket)
              AND h.setting ~ '^[0-9]{1,9}$') m),
    ckpt AS (
        SELECT p.bucket,
               sum(p.delta) FILTER (WHERE p.metric = 'pg_checkpointer_num_requested') AS req,
               sum(p.delta) FILTER (WHERE p.metric = 'pg_checkpointer_num_timed') AS timed,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_checkpointer_buffers_written') AS buffers
        FROM pts p WHERE p.metric LIKE 'pg\_checkpointer\_%'
        GROUP BY p.bucket),
    ckpt15 AS (
        SELECT c.bucket, c.buffers,
               sum(c.req) OVER w AS req, sum(c.timed) OVER w AS timed, count(c.req) OVER w AS minutes
        FROM ckpt c
        WINDOW w AS (ORDER BY c.bucket RANGE BETWEEN interval '14 minutes' PRECEDING AND CURRENT ROW)),
    host AS (
        SELECT p.bucket,
               avg(p.mean) FILTER (WHERE p.metric = 'host_cpu_iowait_ratio') AS iowait,
               avg(p.mean) FILTER (WHERE p.metric = 'host_cpu_busy_ratio') AS busy,
               avg(p.mean) FILTER (WHERE p.metric = 'host_memory_available_bytes') AS avail,
               avg(p.mean) FILTER (WHERE p.metric = 'host_memory_total_bytes') AS total
        FROM pts p WHERE p.metric LIKE 'host\_%' AND p.bucket >= t_from
        GROUP BY p.bucket),
    -- A replica's series differ by state (streaming, catchup): one subject per replica.
    repl AS (
        SELECT 'replica:' || coalesce(p.labels ->> 'application_name', '') || '@'
                   || coalesce(p.labels ->> 'client_addr', 'local') AS subject,
               p.bucket,
               max(p.mean) FILTER (WHERE p.metric = 'pg_replication_replay_lag_bytes') AS lag_bytes,
               max(p.mean) FILTER (WHERE p.metric = 'pg_replication_replay_lag_s') AS lag_s
        FROM pts p WHERE p.metric LIKE 'pg\_replication\_%' AND p.bucket >= t_from
        GROUP BY 1, 2
        UNION ALL
        SELECT 'slot:' || coalesce(p.labels ->> 'slot_name', ''), p.bucket, max(p.mean), NULL
        FROM pts p WHERE p.metric = 'pg_slot_retained_bytes' AND p.bucket >= t_from
        GROUP BY 1, 2
        UNION ALL
        SELECT '', p.bucket, max(p.mean), NULL
        FROM pts p WHERE p.metric = 'pg_recovery_receive_replay_lag_bytes' AND p.bucket >= t_from
        GROUP BY 2),
    -- The minutes the collector reached the instance, and how many cycles each had.
    cycles AS (
        SELECT p.bucket, p.n FROM pts p
        WHERE p.metric = 'pg_up' AND p.labels = '{}' AND p.bucket >= t_from AND p.mean > 0 AND sampling),
    waits AS (
        SELECT date_bin('1 minute', l.collected_at, origin) AS bucket, count(*) AS waiters,
               max(l.lock_wait_s) AS longest_s,
               mode() WITHIN GROUP (ORDER BY l.root_blocker_queryid) AS root_queryid
        FROM pganalytics.lock_waits l
        WHERE l.instance_id = p_instance_id AND l.kind = 'lock_wait' AND sampling
          AND l.collected_at >= t_from AND l.collected_at < t_to
        GROUP BY 1),
    queries AS (
        SELECT d.queryid, date_bin('1 minute', d.collected_at, origin) AS bucket,
               sum(d.calls) AS calls, sum(d.total_exec_time) AS total_ms
        FROM pganalytics.query_stat_deltas d
        WHERE d.instance_id = p_instance_id
          AND (p_types IS NULL OR 'execution_time_spike' = ANY (p_types))
          AND (p_queryids IS NULL OR d.queryid = ANY (p_queryids))
          AND d.collected_at >= t_from AND d.collected_at < t_to
        GROUP BY 1, 2),
    derived AS (
        SELECT 'cache_hit_rate_drop' AS anomaly_type, 'datname:' || d.datname AS subject, d.bucket,
               d.hit / (d.hit + d.rd) AS value,
               jsonb_build_object('blks_hit_per_s', round(d.hit::numeric, 1), 'blks_read_per_s', round(d.rd::numeric, 1)) AS context
        FROM db d WHERE (d.hit + d.rd) * 60 >= 100
        UNION ALL
        SELECT 'temp_spill', 'datname:' || d.datname, d.bucket, d.temp_bytes,
               jsonb_strip_nulls(jsonb_build_object('temp_files', d.temp_files))
        FROM db d WHERE d.temp_bytes IS NOT NULL
        UNION ALL
        SELECT 'deadlocks', 'datname:' || d.datname, d.bucket, d.deadlocks, '{}'::jsonb
        FROM db d WHERE d.deadlocks IS NOT NULL
        UNION ALL
        SELECT 'xid_wraparound_risk', 'datname:' || d.datname, d.bucket, d.xid_age / 2147483648.0,
               jsonb_build_object('xid_age', d.xid_age)
        FROM db d WHERE d.xid_age IS NOT NULL
        UNION ALL
        SELECT 'connection_pool_saturation', '', c.bucket, c.used / least(c.usable, pooler),
               jsonb_strip_nulls(jsonb_build_object(
                   'backends', c.used, 'max_connections', c.max_conn, 'usable', c.usable,
                   'pooler_max_connections', pooler,
                   'limit', CASE WHEN pooler < c.usable THEN 'pooler_max_connections' ELSE 'max_connections' END))
        FROM conn_limit c WHERE least(c.usable, pooler) > 0
        UNION ALL
        SELECT 'checkpoint_pressure', '', c.bucket, c.req * 60.0 / 15,
               jsonb_strip_nulls(jsonb_build_object('requested_15m', c.req, 'timed_15m', c.timed,
                                                    'buffers_written_per_s', round(c.buffers::numeric, 1)))
        FROM ckpt15 c WHERE c.bucket >= t_from AND c.minutes >= 10
        UNION ALL
        SELECT 'high_io_wait', '', h.bucket, h.iowait, '{}'::jsonb FROM host h WHERE h.iowait IS NOT NULL
        UNION ALL
        SELECT 'high_cpu_usage', '', h.bucket, h.busy, '{}'::jsonb FROM host h WHERE h.busy IS NOT NULL
        UNION ALL
        SELECT 'memory_pressure', '', h.bucket, 1 - h.avail / h.total,
               jsonb_build_object('available_bytes', h.avail, 'total_bytes', h.total)
        FROM host h WHERE h.avail IS NOT NULL AND h.total > 0
        UNION ALL
        SELECT 'replication_lag', r.subject, r.bucket, r.lag_bytes,
               jsonb_strip_nulls(jsonb_build_object('replay_lag_s', r.lag_s))
        FROM repl r WHERE r.lag_bytes IS NOT NULL
        UNION ALL
        SELECT 'lock_contention_increase', '', c.bucket, coalesce(w.waiters, 0)::float8 / c.n,
               jsonb_strip_nulls(jsonb_build_object('waiters', coalesce(w.waiters, 0), 'collections', c.n,
                                                    'longest_wait_s', w.longest_s, 'root_blocker_queryid', w.root_queryid))
        FROM cycles c LEFT JOIN waits w USING (bucket)
        UNION ALL
        SELECT 'execution_time_spike', 'queryid:' || q.queryid, q.bucket, q.total_ms / q.calls,
               jsonb_build_object('calls', q.calls, 'total_exec_time_ms', round(q.total_ms::numeric, 3))
        FROM queries q WHERE q.calls > 0)
    SELECT r.anomaly_type, r.subject, r.bucket, r.value::float8, r.context
    FROM derived r
    WHERE (p_types IS NULL OR r.anomaly_type = ANY (p_types))
      -- finite values only (not `value = value`: PostgreSQL's NaN equals itself)
      AND r.value NOT IN ('NaN', 'infinity', '-infinity')
    ORDER BY 1, 2, 3;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_inputs(int, timestamptz, timestamptz, text[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.anomaly_inputs(int, timestamptz, timestamptz, text[], bigint[]) TO pganalytics_admin;
