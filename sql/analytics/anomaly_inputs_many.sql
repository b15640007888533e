-- anomaly_inputs() of many instances at once, each with its own range [p_from[i], p_to[i]):
-- rows (instance_id, anomaly_type, subject, bucket, value, context) ordered by (instance_id,
-- anomaly_type, subject, bucket). The one definition of every derived metric: anomaly_inputs()
-- (one instance, documented there: where each type comes from) returns this function's rows of
-- its instance. It exists for the live path: detect_live() reads a chunk of maintain()'s
-- instances in one query instead of one call per instance (~10,000 instances a minute).
--
-- What it reads of rollups_1m, per series: the buckets of the range, plus what the derived
-- values of those buckets look back at, and no more. A gauge: nothing before the range. A
-- counter's delta at a bucket b needs the row before b when it is at most 15 minutes older
-- (a longer gap gives no rate), so for the range's first bucket the one newest row of the 15
-- minutes before the range (an index probe); the checkpoints' requested and timed counts are
-- summed over the 15 minutes up to each bucket, so theirs start 14 minutes earlier, with the
-- one row before that. Same values as reading the 30 minutes before the range (each bucket's
-- previous row within 15 minutes is among the rows read), at a fraction of the rows.
-- Not SECURITY DEFINER and not granted: only the owner's functions (anomaly_inputs(),
-- detect_live() under maintain()) call it, so it needs no rights of its own.
-- depends: analytics/anomaly_types.sql
CREATE OR REPLACE FUNCTION pganalytics.anomaly_inputs_many(
    p_ids      int[],
    p_from     timestamptz[],
    p_to       timestamptz[],
    p_types    text[]   DEFAULT NULL,
    p_queryids bigint[] DEFAULT NULL)
RETURNS TABLE (instance_id int, anomaly_type text, subject text, bucket timestamptz, value float8, context jsonb)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    origin    CONSTANT timestamptz := timestamptz '2001-01-01 00:00:00+00';
    unknown   text;
    metrics   text[];
    want_lock boolean := p_types IS NULL OR 'lock_contention_increase' = ANY (p_types);
    want_conn boolean := p_types IS NULL OR 'connection_pool_saturation' = ANY (p_types);
    want_exec boolean := p_types IS NULL OR 'execution_time_spike' = ANY (p_types);
BEGIN
    IF p_ids IS NULL OR p_from IS NULL OR p_to IS NULL
       OR cardinality(p_from) <> cardinality(p_ids) OR cardinality(p_to) <> cardinality(p_ids)
       OR array_position(p_ids, NULL) IS NOT NULL OR array_position(p_from, NULL) IS NOT NULL
       OR array_position(p_to, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'anomaly_inputs_many: ids, from and to must be arrays of the same length without NULLs'
            USING ERRCODE = '22023';
    END IF;
    -- a repeated instance would repeat its rows
    IF (SELECT count(DISTINCT u.i) FROM unnest(p_ids) AS u(i)) <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'anomaly_inputs_many: an instance id is given twice' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT FROM unnest(p_from, p_to) AS u(f, t) WHERE u.t <= u.f OR u.t - u.f > interval '40 days') THEN
        RAISE EXCEPTION 'anomaly_inputs_many: every range must be forward and at most 40 days' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(u.t, ', ' ORDER BY u.t) INTO unknown
    FROM unnest(p_types) AS u(t)
    WHERE u.t IS NULL OR NOT EXISTS (SELECT FROM pganalytics.anomaly_types a WHERE a.anomaly_type = u.t);
    IF unknown IS NOT NULL OR array_position(p_types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'anomaly_inputs_many: unknown anomaly type(s) %; known: %', coalesce(unknown, 'NULL'),
            (SELECT string_agg(a.anomaly_type, ', ' ORDER BY a.anomaly_type) FROM pganalytics.anomaly_types a)
            USING ERRCODE = '22023';
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

    RETURN QUERY
    -- Distributed (Citus) stores: every read of a per-instance table is its own MATERIALIZED
    -- CTE, an inner join of what came before (an intermediate result) with that one table on
    -- instance_id and simple filters, which Citus pushes down to each instance's shard; all
    -- the rest is computed from those results. (Correlated and LATERAL reads of the tables
    -- are refused there: "complex joins are only supported when ...".) On one server the
    -- same index scans per instance.
    WITH req AS MATERIALIZED (
        SELECT u.instance_id, u.t0, u.t1 FROM unnest(p_ids, p_from, p_to) AS u(instance_id, t0, t1)),
    base AS MATERIALIZED (
        SELECT r.instance_id,
               date_bin('1 minute', r.t0 - interval '1 microsecond', origin) + interval '1 minute' AS t_from,
               least(r.t1, p.rolled_until) AS t_to
        FROM req r
        JOIN pganalytics.rollup_progress p ON p.instance_id = r.instance_id),
    sampled AS MATERIALIZED (
        SELECT DISTINCT b.instance_id
        FROM base b
        JOIN pganalytics.wait_samples ws ON ws.instance_id = b.instance_id
        WHERE want_lock AND b.t_to > b.t_from
          AND ws.collected_at >= b.t_from - interval '1 day' AND ws.collected_at < b.t_to),
    configured AS MATERIALIZED (
        SELECT DISTINCT b.instance_id
        FROM base b
        JOIN pganalytics.settings_history h ON h.instance_id = b.instance_id
        WHERE want_conn AND b.t_to > b.t_from),
    limits AS MATERIALIZED (
        SELECT h.instance_id, h.name, h.setting::float8 AS setting, h.valid_from, h.valid_to
        FROM base b
        JOIN pganalytics.settings_history h ON h.instance_id = b.instance_id
        WHERE want_conn AND b.t_to > b.t_from
          AND h.name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
          AND h.setting ~ '^[0-9]{1,9}$'),
    -- the limit of the pooler, an instance label (instances is a reference table: read alone, it
    -- is read where it is, not joined into a distributed plan)
    pooled AS MATERIALIZED (
        SELECT i.instance_id, (i.labels ->> 'pooler_max_connections')::float8 AS pooler
        FROM pganalytics.instances i
        WHERE want_conn AND i.instance_id = ANY (p_ids) AND i.labels ->> 'pooler_max_connections' ~ '^[0-9]{1,9}$'),
    -- Each instance's whole buckets: the first at or after its from, nothing past its last
    -- rolled-up minute (rollup_progress: a partial minute never reads as a drop); whether its
    -- wait-event sampling runs, whether it has any settings history, its pooler limit.
    win AS MATERIALIZED (
        SELECT b.instance_id, b.t_from, b.t_to,
               b.instance_id IN (SELECT s.instance_id FROM sampled s) AS sampling,
               b.instance_id IN (SELECT c.instance_id FROM configured c) AS settings, pl.pooler
        FROM base b
        LEFT JOIN pooled pl ON pl.instance_id = b.instance_id
        WHERE b.t_to > b.t_from),
    sel AS MATERIALIZED (
        SELECT w.instance_id, w.t_from, w.t_to, s.series_id, s.metric, s.labels, s.kind,
               CASE WHEN s.kind = 'counter'
                         AND s.metric IN ('pg_checkpointer_num_requested', 'pg_checkpointer_num_timed')
                    THEN w.t_from - interval '14 minutes' ELSE w.t_from END AS lo
        FROM win w
        JOIN pganalytics.series s ON s.instance_id = w.instance_id
        WHERE s.metric = ANY (metrics)),
    cur AS MATERIALIZED (
        SELECT sel.instance_id, sel.t_from, sel.series_id, sel.metric, sel.labels, sel.kind,
               r.bucket, r.n, r.sum, r.last
        FROM sel
        JOIN pganalytics.rollups_1m r ON r.instance_id = sel.instance_id AND r.series_id = sel.series_id
        WHERE r.bucket >= sel.lo AND r.bucket < sel.t_to),
    -- a counter's row before its first bucket read, if within the 15 minutes a rate spans
    prev AS MATERIALIZED (
        SELECT DISTINCT ON (sel.instance_id, sel.series_id)
               sel.instance_id, sel.t_from, sel.series_id, sel.metric, sel.labels, sel.kind,
               r.bucket, r.n, r.sum, r.last
        FROM sel
        JOIN pganalytics.rollups_1m r ON r.instance_id = sel.instance_id AND r.series_id = sel.series_id
        WHERE sel.kind = 'counter' AND r.bucket >= sel.lo - interval '15 minutes' AND r.bucket < sel.lo
        ORDER BY sel.instance_id, sel.series_id, r.bucket DESC),
    raw AS (
        SELECT * FROM cur UNION ALL SELECT * FROM prev),
    pts AS MATERIALIZED (
        SELECT x.instance_id, x.t_from, x.metric, x.labels, x.bucket, x.mean, x.n, x.delta,
               x.delta / nullif(x.secs, 0) AS rate
        FROM (SELECT r.instance_id, r.t_from, r.metric, r.labels, r.bucket, r.sum / r.n AS mean, r.n,
                     CASE WHEN r.kind = 'counter' AND r.bucket - lag(r.bucket) OVER w <= interval '15 minutes' THEN
                         r.last - CASE WHEN r.last >= lag(r.last) OVER w THEN lag(r.last) OVER w ELSE 0 END
                     END AS delta,
                     extract(epoch FROM r.bucket - lag(r.bucket) OVER w)::float8 AS secs
              FROM raw r
              WINDOW w AS (PARTITION BY r.instance_id, r.series_id ORDER BY r.bucket)) x),
    db AS (
        SELECT p.instance_id, p.labels ->> 'datname' AS datname, p.bucket,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_blks_hit') AS hit,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_blks_read') AS rd,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_temp_bytes') AS temp_bytes,
               sum(p.delta) FILTER (WHERE p.metric = 'pg_database_temp_files') AS temp_files,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_database_deadlocks') * 60 AS deadlocks,
               avg(p.mean) FILTER (WHERE p.metric = 'pg_database_xid_age') AS xid_age,
               sum(p.mean) FILTER (WHERE p.metric = 'pg_database_numbackends') AS backends
        FROM pts p
        WHERE p.metric LIKE 'pg\_database\_%' AND p.bucket >= p.t_from
        GROUP BY 1, 2, 3),
    conn AS (
        SELECT d.instance_id, d.bucket, sum(d.backends) AS used
        FROM db d JOIN win w ON w.instance_id = d.instance_id
        WHERE d.backends IS NOT NULL AND w.settings
        GROUP BY d.instance_id, d.bucket),
    conn_limit AS (
        SELECT c.instance_id, c.bucket, c.used, m.max_conn, m.max_conn - m.su_reserved - m.reserved AS usable
        FROM conn c
        CROSS JOIN LATERAL (
            SELECT coalesce(max(h.setting) FILTER (WHERE h.name = 'max_connections'), 100) AS max_conn,
                   coalesce(max(h.setting) FILTER (WHERE h.name = 'superuser_reserved_connections'), 3) AS su_reserved,
                   coalesce(max(h.setting) FILTER (WHERE h.name = 'reserved_connections'), 0) AS reserved
            FROM limits h
            WHERE h.instance_id = c.instance_id
              AND h.valid_from < c.bucket + interval '1 minute'
              AND (h.valid_to IS NULL OR h.valid_to > c.bucket)) m),
    ckpt AS (
        SELECT p.instance_id, p.t_from, p.bucket,
               sum(p.delta) FILTER (WHERE p.metric = 'pg_checkpointer_num_requested') AS req,
               sum(p.delta) FILTER (WHERE p.metric = 'pg_checkpointer_num_timed') AS timed,
               sum(p.rate) FILTER (WHERE p.metric = 'pg_checkpointer_buffers_written') AS buffers
        FROM pts p WHERE p.metric LIKE 'pg\_checkpointer\_%'
        GROUP BY p.instance_id, p.t_from, p.bucket),
    ckpt15 AS (
        SELECT c.instance_id, c.t_from, c.bucket, c.buffers,
               sum(c.req) OVER w AS req, sum(c.timed) OVER w AS timed, count(c.req) OVER w AS minutes
        FROM ckpt c
        WINDOW w AS (PARTITION BY c.instance_id ORDER BY c.bucket
                     RANGE BETWEEN interval '14 minutes' PRECEDING AND CURRENT ROW)),
    host AS (
        SELECT p.instance_id, p.bucket,
               avg(p.mean) FILTER (WHERE p.metric = 'host_cpu_iowait_ratio') AS iowait,
               avg(p.mean) FILTER (WHERE p.metric = 'host_cpu_busy_ratio') AS busy,
               avg(p.mean) FILTER (WHERE p.metric = 'host_memory_available_bytes') AS avail,
               avg(p.mean) FILTER (WHERE p.metric = 'host_memory_total_bytes') AS total
        FROM pts p WHERE p.metric LIKE 'host\_%' AND p.bucket >= p.t_from
        GROUP BY p.instance_id, p.bucket),
    -- A replica's series differ by state (streaming, catchup): one subject per replica.
    repl AS (
        SELECT p.instance_id,
               'replica:' || coalesce(p.labels ->> 'application_name', '') || '@'
                   || coalesce(p.labels ->> 'client_addr', 'local') AS subject,
               p.bucket,
               max(p.mean) FILTER (WHERE p.metric = 'pg_replication_replay_lag_bytes') AS lag_bytes,
               max(p.mean) FILTER (WHERE p.metric = 'pg_replication_replay_lag_s') AS lag_s
        FROM pts p WHERE p.metric LIKE 'pg\_replication\_%' AND p.bucket >= p.t_from
        GROUP BY 1, 2, 3
        UNION ALL
        SELECT p.instance_id, 'slot:' || coalesce(p.labels ->> 'slot_name', ''), p.bucket, max(p.mean), NULL
        FROM pts p WHERE p.metric = 'pg_slot_retained_bytes' AND p.bucket >= p.t_from
        GROUP BY 1, 2, 3
        UNION ALL
        SELECT p.instance_id, '', p.bucket, max(p.mean), NULL
        FROM pts p WHERE p.metric = 'pg_recovery_receive_replay_lag_bytes' AND p.bucket >= p.t_from
        GROUP BY 1, 3),
    -- The minutes the collector reached the instance, and how many cycles each had.
    cycles AS (
        SELECT p.instance_id, p.bucket, p.n
        FROM pts p JOIN win w ON w.instance_id = p.instance_id
        WHERE p.metric = 'pg_up' AND p.labels = '{}' AND p.bucket >= p.t_from AND p.mean > 0 AND w.sampling),
    waits AS MATERIALIZED (
        SELECT l.instance_id, date_bin('1 minute', l.collected_at, origin) AS bucket, count(*) AS waiters,
               max(l.lock_wait_s) AS longest_s,
               mode() WITHIN GROUP (ORDER BY l.root_blocker_queryid) AS root_queryid
        FROM win w
        JOIN pganalytics.lock_waits l ON l.instance_id = w.instance_id
        WHERE w.sampling AND l.kind = 'lock_wait' AND l.collected_at >= w.t_from AND l.collected_at < w.t_to
        GROUP BY 1, 2),
    queries AS MATERIALIZED (
        SELECT d.instance_id, d.queryid, date_bin('1 minute', d.collected_at, origin) AS bucket,
               sum(d.calls) AS calls, sum(d.total_exec_time) AS total_ms
        FROM win w
        JOIN pganalytics.query_stat_deltas d ON d.instance_id = w.instance_id
        WHERE want_exec
          AND (p_queryids IS NULL OR d.queryid = ANY (p_queryids))
          AND d.collected_at >= w.t_from AND d.collected_at < w.t_to
        GROUP BY 1, 2, 3),
    derived AS (
        SELECT d.instance_id, 'cache_hit_rate_drop' AS anomaly_type, 'datname:' || d.datname AS subject, d.bucket,
               d.hit / (d.hit + d.rd) AS value,
               jsonb_build_object('blks_hit_per_s', round(d.hit::numeric, 1), 'blks_read_per_s', round(d.rd::numeric, 1)) AS context
        FROM db d WHERE (d.hit + d.rd) * 60 >= 100
        UNION ALL
        SELECT d.instance_id, 'temp_spill', 'datname:' || d.datname, d.bucket, d.temp_bytes,
               jsonb_strip_nulls(jsonb_build_object('temp_files', d.temp_files))
        FROM db d WHERE d.temp_bytes IS NOT NULL
        UNION ALL
        SELECT d.instance_id, 'deadlocks', 'datname:' || d.datname, d.bucket, d.deadlocks, '{}'::jsonb
        FROM db d WHERE d.deadlocks IS NOT NULL
        UNION ALL
        SELECT d.instance_id, 'xid_wraparound_risk', 'datname:' || d.datname, d.bucket, d.xid_age / 2147483648.0,
               jsonb_build_object('xid_age', d.xid_age)
        FROM db d WHERE d.xid_age IS NOT NULL
        UNION ALL
        SELECT c.instance_id, 'connection_pool_saturation', '', c.bucket, c.used / least(c.usable, w.pooler),
               jsonb_strip_nulls(jsonb_build_object(
                   'backends', c.used, 'max_connections', c.max_conn, 'usable', c.usable,
                   'pooler_max_connections', w.pooler,
                   'limit', CASE WHEN w.pooler < c.usable THEN 'pooler_max_connections' ELSE 'max_connections' END))
        FROM conn_limit c JOIN win w ON w.instance_id = c.instance_id
        WHERE least(c.usable, w.pooler) > 0
        UNION ALL
        SELECT c.instance_id, 'checkpoint_pressure', '', c.bucket, c.req * 60.0 / 15,
               jsonb_strip_nulls(jsonb_build_object('requested_15m', c.req, 'timed_15m', c.timed,
                                                    'buffers_written_per_s', round(c.buffers::numeric, 1)))
        FROM ckpt15 c WHERE c.bucket >= c.t_from AND c.minutes >= 10
        UNION ALL
        SELECT h.instance_id, 'high_io_wait', '', h.bucket, h.iowait, '{}'::jsonb FROM host h WHERE h.iowait IS NOT NULL
        UNION ALL
        SELECT h.instance_id, 'high_cpu_usage', '', h.bucket, h.busy, '{}'::jsonb FROM host h WHERE h.busy IS NOT NULL
        UNION ALL
        SELECT h.instance_id, 'memory_pressure', '', h.bucket, 1 - h.avail / h.total,
               jsonb_build_object('available_bytes', h.avail, 'total_bytes', h.total)
        FROM host h WHERE h.avail IS NOT NULL AND h.total > 0
        UNION ALL
        SELECT r.instance_id, 'replication_lag', r.subject, r.bucket, r.lag_bytes,
               jsonb_strip_nulls(jsonb_build_object('replay_lag_s', r.lag_s))
        FROM repl r WHERE r.lag_bytes IS NOT NULL
        UNION ALL
        SELECT c.instance_id, 'lock_contention_increase', '', c.bucket, coalesce(w.waiters, 0)::float8 / c.n,
               jsonb_strip_nulls(jsonb_build_object('waiters', coalesce(w.waiters, 0), 'collections', c.n,
                                                    'longest_wait_s', w.longest_s, 'root_blocker_queryid', w.root_queryid))
        FROM cycles c LEFT JOIN waits w USING (instance_id, bucket)
        UNION ALL
        SELECT q.instance_id, 'execution_time_spike', 'queryid:' || q.queryid, q.bucket, q.total_ms / q.calls,
               jsonb_build_object('calls', q.calls, 'total_exec_time_ms', round(q.total_ms::numeric, 3))
        FROM queries q WHERE q.calls > 0)
    SELECT r.instance_id, r.anomaly_type, r.subject, r.bucket, r.value::float8, r.context
    FROM derived r
    WHERE (p_types IS NULL OR r.anomaly_type = ANY (p_types))
      -- finite values only (not `value = value`: PostgreSQL's NaN equals itself)
      AND r.value NOT IN ('NaN', 'infinity', '-infinity')
    ORDER BY 1, 2, 3, 4;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_inputs_many(int[], timestamptz[], timestamptz[], text[], bigint[]) FROM PUBLIC;
