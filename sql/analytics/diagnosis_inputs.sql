-- What root-cause analysis reads about one instance over a window [p_from, p_to) and the
-- baseline just before it, as one JSON document: the raw evidence, aggregated per window
-- ("w") and baseline ("b"); root_cause_rules() turns it into features and causes.
-- The baseline is the time just before the window, as long as the window (at least a minute,
-- at most an hour) and cut to where the instance's data starts: at a 1-2 s collection
-- interval a minute of history is enough to compare against.
--   queries    the statements that took the most time in either period (pg_stat_statements
--              deltas, top-level, pooled over users and databases), per period: calls,
--              exec time (ms), shared blocks hit/read, temp blocks written, rows, plans;
--              "all" holds the instance's totals
--   waits      wait-event samples of client backends (AAS = samples / ticks), per event;
--              ticks are stored only by drains that saw a session, so `ticks` also gives
--              the seconds those drains covered (the sampling rate, for the quiet ones)
--   locks      lock waiters per collection, the root blockers of their chains, and sessions
--              idle in a transaction (with their snapshot age)
--   metrics    instance-wide series (summed over their series per sample, max for lags):
--              mean, max, first, last and points per period
--   tables     per-table statistics: scans, tuples, dead and live rows, modifications
--              since the last analyze, per period (also for one query: its tables' age)
--   indexes    per-index scan rates and how many samples each period has (an index whose
--              series stops between the periods is gone or fell out of the top 500)
--   settings   changes noticed in [baseline start, window end + 1 minute) (old and new value)
--              and current values
--   profile    the newest trained anomaly model's hour-of-week profiles (base64 of 168 float8s,
--              offsets from the level) of the series the rules compare, by anomaly key; NULL
--              without a model
--   dropped_indexes  index definitions that ended in that time and did not come back
--   plans      per top query: the plan hashes seen before and in the window, the newest plan's
--              sequential scans with their filters and estimated rows
--   advice     index_advice rows of the top queries
-- p_queryid narrows queries (and "all"), waits, blockers, plans and advice to one statement
-- and leaves out the instance-wide metrics (analyze_query()).
-- SECURITY DEFINER, read-only: admins call it without privileges on the tables; it reads
-- only the store's own tables, all named with their schema.
-- depends: store/read_series.sql
-- depends: analytics/plan_scans.sql
CREATE OR REPLACE FUNCTION pganalytics.diagnosis_inputs(
    p_instance text,
    p_from     timestamptz,
    p_to       timestamptz,
    p_queryid  bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_top      CONSTANT int := 15;  -- queries per ranking (window time, baseline time, change)
    -- Settings and index definitions are read at the slow cadence (60 s by default): a change
    -- made in the window may be noticed up to that long after it. Changes noticed within a
    -- minute after the window count (their "at" says when they were noticed).
    c_noticed  CONSTANT interval := interval '1 minute';
    iid        int;
    b_from     timestamptz;
    first_at   timestamptz;
    res        text;
    m          text;
    agg        text;
    j_queries  jsonb;
    j_waits    jsonb;
    j_ticks    jsonb;
    j_locks    jsonb;
    j_blockers jsonb;
    j_idle     jsonb;
    j_metrics  jsonb := '{}';
    j_tables   jsonb;
    j_indexes  jsonb;
    j_changes  jsonb;
    j_current  jsonb;
    j_dropped  jsonb;
    j_plans    jsonb;
    j_advice   jsonb;
    j_profile  jsonb;
    top_ids    bigint[];
    known      text[];  -- the metrics the instance has series of (read_series() refuses others)
    one        jsonb;
    -- instance-wide metrics: counters come out of read_series() as per-second rates
    c_sum_metrics CONSTANT text[] := ARRAY[
        'pg_database_blks_hit', 'pg_database_blks_read', 'pg_database_temp_bytes',
        'pg_database_temp_files', 'pg_database_xact_commit', 'pg_database_xact_rollback',
        'pg_database_deadlocks', 'pg_database_tup_updated', 'pg_database_tup_deleted',
        'pg_database_tup_inserted', 'pg_database_tup_returned', 'pg_database_sessions_fatal',
        'pg_database_numbackends', 'pg_database_blk_read_time',
        'pg_checkpointer_num_requested', 'pg_checkpointer_num_timed',
        'pg_checkpointer_buffers_written', 'pg_checkpointer_write_time',
        'pg_bgwriter_buffers_alloc', 'pg_wal_wal_bytes', 'pg_wal_wal_fpi',
        'host_cpu_busy_ratio', 'host_cpu_iowait_ratio', 'host_memory_available_bytes',
        'host_memory_total_bytes', 'host_load1',
        'pg_activity_client_backends', 'pg_activity_active', 'pg_activity_idle_in_transaction',
        'pg_activity_waiting_on_lock'];
    c_max_metrics CONSTANT text[] := ARRAY[
        'pg_replication_replay_lag_bytes', 'pg_replication_replay_lag_s', 'pg_slot_retained_bytes',
        'pg_recovery_replay_delay_s', 'pg_recovery_receive_replay_lag_bytes',
        'pg_activity_oldest_xact_age_s', 'pg_activity_oldest_xmin_age',
        'pg_activity_oldest_query_age_s', 'pg_database_xid_age'];
    c_table_metrics CONSTANT text[] := ARRAY[
        'pg_table_seq_scan', 'pg_table_seq_tup_read', 'pg_table_idx_scan', 'pg_table_idx_tup_fetch',
        'pg_table_n_tup_ins', 'pg_table_n_tup_upd', 'pg_table_n_tup_del', 'pg_table_n_tup_hot_upd',
        'pg_table_n_live_tup', 'pg_table_n_dead_tup', 'pg_table_n_mod_since_analyze',
        'pg_table_analyze_age_s', 'pg_table_vacuum_age_s', 'pg_table_autovacuum_count',
        'pg_table_autoanalyze_count', 'pg_table_size_bytes'];
BEGIN
    IF p_instance IS NULL OR p_from IS NULL OR p_to IS NULL THEN
        RAISE EXCEPTION 'diagnosis_inputs: instance, from and to must not be null';
    END IF;
    IF p_to <= p_from THEN
        RAISE EXCEPTION 'diagnosis_inputs: the window must end after it starts, got % .. %', p_from, p_to;
    END IF;
    IF p_to - p_from > interval '31 days' THEN
        RAISE EXCEPTION 'diagnosis_inputs: the window may be at most 31 days, got %', p_to - p_from;
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'diagnosis_inputs: unknown instance %', pg_catalog.quote_literal(p_instance);
    END IF;

    -- The baseline: as long as the window within [1 minute, 1 hour], not before the data.
    b_from := p_from - least(greatest(p_to - p_from, interval '1 minute'), interval '1 hour');
    -- the ledger's first delivery in that range (bounded: partitions by day, the instance's rows)
    SELECT min(s.collected_at) INTO first_at FROM pganalytics.snapshots s
    WHERE s.instance_id = iid AND s.collected_at >= b_from AND s.collected_at < p_to;
    b_from := greatest(b_from, coalesce(first_at, b_from));
    IF b_from > p_from THEN
        b_from := p_from;
    END IF;
    -- raw samples for short ranges; rollups (1-minute means and rates) beyond two hours
    res := CASE WHEN p_to - b_from <= interval '2 hours' THEN 'raw' ELSE 'auto' END;

    -- Statements: per period sums; the top ones by window time, baseline time and change.
    WITH d AS (
        SELECT q.queryid, q.collected_at > p_from AS in_w, sum(q.calls) AS calls,
               sum(q.total_exec_time) AS time_ms, sum(q.shared_blks_hit) AS hit,
               sum(q.shared_blks_read) AS rd, sum(q.temp_blks_written) AS temp,
               sum(q.rows) AS nrows, sum(q.plans) AS plans, sum(q.shared_blk_read_time) AS read_ms
        FROM pganalytics.query_stat_deltas q
        WHERE q.instance_id = iid AND q.toplevel AND q.collected_at > b_from AND q.collected_at <= p_to
          AND (p_queryid IS NULL OR q.queryid = p_queryid)
        GROUP BY 1, 2),
    per AS (
        SELECT d.queryid,
               jsonb_build_object('calls', sum(d.calls) FILTER (WHERE d.in_w), 'time_ms', sum(d.time_ms) FILTER (WHERE d.in_w),
                                  'hit', sum(d.hit) FILTER (WHERE d.in_w), 'read', sum(d.rd) FILTER (WHERE d.in_w),
                                  'temp', sum(d.temp) FILTER (WHERE d.in_w), 'rows', sum(d.nrows) FILTER (WHERE d.in_w),
                                  'plans', sum(d.plans) FILTER (WHERE d.in_w), 'read_ms', sum(d.read_ms) FILTER (WHERE d.in_w)) AS w,
               jsonb_build_object('calls', sum(d.calls) FILTER (WHERE NOT d.in_w), 'time_ms', sum(d.time_ms) FILTER (WHERE NOT d.in_w),
                                  'hit', sum(d.hit) FILTER (WHERE NOT d.in_w), 'read', sum(d.rd) FILTER (WHERE NOT d.in_w),
                                  'temp', sum(d.temp) FILTER (WHERE NOT d.in_w), 'rows', sum(d.nrows) FILTER (WHERE NOT d.in_w),
                                  'plans', sum(d.plans) FILTER (WHERE NOT d.in_w), 'read_ms', sum(d.read_ms) FILTER (WHERE NOT d.in_w)) AS b,
               coalesce(sum(d.time_ms) FILTER (WHERE d.in_w), 0) AS tw,
               coalesce(sum(d.time_ms) FILTER (WHERE NOT d.in_w), 0) AS tb
        FROM d GROUP BY 1),
    ranked AS (
        SELECT per.*, rank() OVER (ORDER BY per.tw DESC) AS rw, rank() OVER (ORDER BY per.tb DESC) AS rb,
               rank() OVER (ORDER BY per.tw / extract(epoch FROM p_to - p_from)
                                     - per.tb / greatest(extract(epoch FROM p_from - b_from), 1) DESC) AS rd
        FROM per)
    SELECT jsonb_agg(jsonb_build_object('queryid', r.queryid, 'w', r.w, 'b', r.b) ORDER BY r.tw DESC),
           array_agg(r.queryid)
    INTO j_queries, top_ids
    FROM ranked r WHERE r.rw <= c_top OR r.rb <= c_top OR r.rd <= c_top;
    top_ids := coalesce(top_ids, '{}');
    -- their texts (one per queryid: the newest)
    SELECT coalesce(jsonb_agg(q || jsonb_build_object('query', t.query)), '[]') INTO j_queries
    FROM jsonb_array_elements(coalesce(j_queries, '[]')) q
    LEFT JOIN (SELECT DISTINCT ON (x.queryid) x.queryid, left(x.query, 500) AS query
               FROM pganalytics.query_texts x
               WHERE x.instance_id = iid AND x.queryid = ANY (top_ids)
               ORDER BY x.queryid) t ON t.queryid = (q ->> 'queryid')::bigint;
    WITH d AS (
        SELECT q.collected_at > p_from AS in_w, sum(q.calls) AS calls, sum(q.total_exec_time) AS time_ms,
               sum(q.shared_blks_hit) AS hit, sum(q.shared_blks_read) AS rd, sum(q.temp_blks_written) AS temp,
               sum(q.rows) AS nrows, sum(q.plans) AS plans, sum(q.shared_blk_read_time) AS read_ms,
               count(DISTINCT q.collected_at) AS snapshots
        FROM pganalytics.query_stat_deltas q
        WHERE q.instance_id = iid AND q.toplevel AND q.collected_at > b_from AND q.collected_at <= p_to
          AND (p_queryid IS NULL OR q.queryid = p_queryid)
        GROUP BY 1)
    SELECT j_queries || jsonb_build_array(jsonb_build_object(
               'queryid', 'all',
               'w', (SELECT to_jsonb(d) - 'in_w' FROM d WHERE d.in_w),
               'b', (SELECT to_jsonb(d) - 'in_w' FROM d WHERE NOT d.in_w)))
    INTO j_queries;

    -- Wait events of client backends, and the ticks they were counted over.
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', x.wtype, 'event', x.wevent, 'state', x.state,
                                                 'w', x.w, 'b', x.b)), '[]')
    INTO j_waits
    FROM (SELECT coalesce(s.wait_event_type, 'CPU') AS wtype, coalesce(s.wait_event, 'CPU') AS wevent, s.state,
                 sum(s.samples) FILTER (WHERE s.collected_at > p_from) AS w,
                 sum(s.samples) FILTER (WHERE s.collected_at <= p_from) AS b
          FROM pganalytics.wait_samples s
          WHERE s.instance_id = iid AND s.collected_at > b_from AND s.collected_at <= p_to
            AND s.backend_type = 'client backend'
            AND (p_queryid IS NULL OR s.queryid = p_queryid)
          GROUP BY 1, 2, 3) x;
    SELECT jsonb_build_object('w', sum(t.ticks) FILTER (WHERE t.collected_at > p_from),
                              'b', sum(t.ticks) FILTER (WHERE t.collected_at <= p_from),
                              'w_collections', count(*) FILTER (WHERE t.collected_at > p_from),
                              'b_collections', count(*) FILTER (WHERE t.collected_at <= p_from),
                              'w_interval_s', sum(t.interval_s) FILTER (WHERE t.collected_at > p_from),
                              'b_interval_s', sum(t.interval_s) FILTER (WHERE t.collected_at <= p_from))
    INTO j_ticks
    FROM (SELECT s.collected_at, max(s.ticks) AS ticks, max(s.interval_s) AS interval_s
          FROM pganalytics.wait_samples s
          WHERE s.instance_id = iid AND s.collected_at > b_from AND s.collected_at <= p_to
          GROUP BY 1) t;

    -- Lock waiters per collection, their chains' roots, and long idle transactions.
    SELECT jsonb_build_object(
               'w_waiters', count(*) FILTER (WHERE l.kind = 'lock_wait' AND l.collected_at > p_from),
               'b_waiters', count(*) FILTER (WHERE l.kind = 'lock_wait' AND l.collected_at <= p_from),
               'w_collections_with_waiters', count(DISTINCT l.collected_at) FILTER (WHERE l.kind = 'lock_wait' AND l.collected_at > p_from),
               'w_max_wait_s', max(l.lock_wait_s) FILTER (WHERE l.kind = 'lock_wait' AND l.collected_at > p_from),
               'b_max_wait_s', max(l.lock_wait_s) FILTER (WHERE l.kind = 'lock_wait' AND l.collected_at <= p_from),
               'w_max_depth', max(l.chain_depth) FILTER (WHERE l.kind = 'lock_wait' AND l.collected_at > p_from))
    INTO j_locks
    FROM pganalytics.lock_waits l
    WHERE l.instance_id = iid AND l.collected_at > b_from AND l.collected_at <= p_to;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'pid', x.root_blocker_pid, 'state', x.state, 'queryid', x.queryid,
               'xact_age_s', x.xact_age_s, 'waiter_samples', x.n, 'waiting_queryids', x.waiting) ORDER BY x.n DESC), '[]')
    INTO j_blockers
    FROM (SELECT l.root_blocker_pid, (array_agg(l.root_blocker_state ORDER BY l.collected_at DESC))[1] AS state,
                 (array_agg(l.root_blocker_queryid ORDER BY l.collected_at DESC))[1] AS queryid,
                 max(l.root_blocker_xact_age_s) AS xact_age_s, count(*) AS n,
                 (array_agg(DISTINCT l.queryid) FILTER (WHERE l.queryid IS NOT NULL))[1:5] AS waiting
          FROM pganalytics.lock_waits l
          WHERE l.instance_id = iid AND l.kind = 'lock_wait' AND l.collected_at > p_from AND l.collected_at <= p_to
            AND l.root_blocker_pid IS NOT NULL
            AND (p_queryid IS NULL OR l.queryid = p_queryid)
          GROUP BY 1 ORDER BY count(*) DESC LIMIT 5) x;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'pid', x.pid, 'usename', x.usename, 'datname', x.datname, 'application_name', x.app,
               'xact_age_s', x.xact_age_s, 'xmin_age', x.xmin_age, 'seen', x.n,
               'first_at', x.first_at, 'last_at', x.last_at) ORDER BY x.xact_age_s DESC), '[]')
    INTO j_idle
    FROM (SELECT l.pid, max(l.usename) AS usename, max(l.datname) AS datname, max(l.application_name) AS app,
                 max(l.xact_age_s) AS xact_age_s, max(l.xmin_age) AS xmin_age, count(*) AS n,
                 min(l.collected_at) AS first_at, max(l.collected_at) AS last_at
          FROM pganalytics.lock_waits l
          WHERE l.instance_id = iid AND l.kind = 'idle_in_transaction' AND l.collected_at > p_from AND l.collected_at <= p_to
          GROUP BY 1 ORDER BY max(l.xact_age_s) DESC LIMIT 5) x;

    SELECT coalesce(array_agg(DISTINCT s.metric), '{}') INTO known
    FROM pganalytics.series s
    WHERE s.instance_id = iid AND s.metric = ANY (c_sum_metrics || c_max_metrics || c_table_metrics || '{pg_index_idx_scan}'::text[]);

    -- Instance-wide metrics (skipped for one query: they are not its own).
    IF p_queryid IS NULL THEN
        FOREACH m IN ARRAY c_sum_metrics || c_max_metrics LOOP
            CONTINUE WHEN NOT m = ANY (known);
            agg := CASE WHEN m = ANY (c_max_metrics) THEN 'max' ELSE 'sum' END;
            EXECUTE pg_catalog.format($sql$
                SELECT jsonb_strip_nulls(jsonb_build_object(
                    'w_mean', avg(v) FILTER (WHERE ts >= $2), 'b_mean', avg(v) FILTER (WHERE ts < $2),
                    'w_max', max(v) FILTER (WHERE ts >= $2), 'b_max', max(v) FILTER (WHERE ts < $2),
                    'w_min', min(v) FILTER (WHERE ts >= $2), 'b_min', min(v) FILTER (WHERE ts < $2),
                    'w_first', (array_agg(v ORDER BY ts) FILTER (WHERE ts >= $2))[1],
                    'w_last', (array_agg(v ORDER BY ts DESC) FILTER (WHERE ts >= $2))[1],
                    'b_last', (array_agg(v ORDER BY ts DESC) FILTER (WHERE ts < $2))[1],
                    'w_n', count(*) FILTER (WHERE ts >= $2), 'b_n', count(*) FILTER (WHERE ts < $2)))
                FROM (SELECT r.ts, %s(r.value) AS v
                      FROM pganalytics.read_series($1, $3, $4, $5, $6) r
                      WHERE r.value = r.value  -- not NaN
                      GROUP BY r.ts) x$sql$, agg)
            INTO one USING p_instance, p_from, m, b_from, p_to, res;
            IF one IS NOT NULL AND one <> '{"w_n": 0, "b_n": 0}' THEN
                j_metrics := j_metrics || jsonb_build_object(m, one);
            END IF;
        END LOOP;
    END IF;

    -- Per-table statistics, per period (the slow cadence: few points).
    SELECT coalesce(jsonb_agg(jsonb_build_object('schemaname', t.labels ->> 'schemaname',
                                                 'relname', t.labels ->> 'relname', 'metrics', t.metrics)), '[]')
    INTO j_tables
    FROM (SELECT x.labels, jsonb_object_agg(x.metric, x.stats) AS metrics
          FROM (SELECT mm.metric, r.labels, jsonb_strip_nulls(jsonb_build_object(
                       'w_mean', avg(r.value) FILTER (WHERE r.ts >= p_from), 'b_mean', avg(r.value) FILTER (WHERE r.ts < p_from),
                       'w_max', max(r.value) FILTER (WHERE r.ts >= p_from),
                       'w_first', (array_agg(r.value ORDER BY r.ts) FILTER (WHERE r.ts >= p_from))[1],
                       'w_last', (array_agg(r.value ORDER BY r.ts DESC) FILTER (WHERE r.ts >= p_from))[1],
                       'b_last', (array_agg(r.value ORDER BY r.ts DESC) FILTER (WHERE r.ts < p_from))[1],
                       'w_n', count(*) FILTER (WHERE r.ts >= p_from), 'b_n', count(*) FILTER (WHERE r.ts < p_from))) AS stats
                FROM unnest(c_table_metrics) AS mm (metric)
                CROSS JOIN LATERAL pganalytics.read_series(p_instance, mm.metric, b_from, p_to, res) r
                WHERE r.value = r.value AND mm.metric = ANY (known)
                GROUP BY 1, 2) x
          GROUP BY 1) t;

    -- Index scan rates and presence per period, one object per index.
    SELECT coalesce(jsonb_agg(x.j), '[]') INTO j_indexes
    FROM (SELECT jsonb_build_object(
                     'schemaname', r.labels ->> 'schemaname', 'relname', r.labels ->> 'relname',
                     'indexrelname', r.labels ->> 'indexrelname',
                     'w_rate', avg(r.value) FILTER (WHERE r.ts >= p_from), 'b_rate', avg(r.value) FILTER (WHERE r.ts < p_from),
                     'w_n', count(*) FILTER (WHERE r.ts >= p_from), 'b_n', count(*) FILTER (WHERE r.ts < p_from),
                     'last_at', max(r.ts)) AS j
          FROM pganalytics.read_series(p_instance, 'pg_index_idx_scan', b_from, p_to, res) r
          WHERE 'pg_index_idx_scan' = ANY (known)
          GROUP BY r.series_id, r.labels) x;

    -- Settings that changed in [baseline start, window end): not the first snapshot's rows.
    SELECT coalesce(jsonb_agg(jsonb_build_object('name', n.name, 'setting', n.setting, 'unit', n.unit,
                                                 'source', n.source, 'at', n.valid_from,
                                                 'before', o.setting) ORDER BY n.valid_from), '[]')
    INTO j_changes
    FROM pganalytics.settings_history n
    LEFT JOIN pganalytics.settings_history o
           ON o.instance_id = iid AND o.name = n.name AND o.valid_to = n.valid_from
    WHERE n.instance_id = iid AND n.valid_from >= b_from AND n.valid_from < p_to + c_noticed
      AND n.valid_from > (SELECT min(f.valid_from) FROM pganalytics.settings_history f WHERE f.instance_id = iid);
    -- and settings that went back to default (a row closed with no successor)
    SELECT j_changes || coalesce(jsonb_agg(jsonb_build_object('name', o.name, 'setting', NULL, 'unit', o.unit,
                                                              'source', 'default', 'at', o.valid_to,
                                                              'before', o.setting)), '[]')
    INTO j_changes
    FROM pganalytics.settings_history o
    WHERE o.instance_id = iid AND o.valid_to >= b_from AND o.valid_to < p_to + c_noticed
      AND NOT EXISTS (SELECT FROM pganalytics.settings_history n
                      WHERE n.instance_id = iid AND n.name = o.name AND n.valid_from = o.valid_to);
    SELECT coalesce(jsonb_object_agg(h.name, h.setting), '{}') INTO j_current
    FROM (SELECT DISTINCT ON (s.name) s.name, s.setting
          FROM pganalytics.settings_history s
          -- in force at the window's end: a row closed with no successor went back to default
          WHERE s.instance_id = iid AND s.valid_from < p_to AND (s.valid_to IS NULL OR s.valid_to >= p_to)
            AND s.name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections',
                           'work_mem', 'shared_buffers', 'max_wal_size', 'checkpoint_timeout',
                           'random_page_cost', 'effective_cache_size', 'autovacuum', 'hash_mem_multiplier')
          ORDER BY s.name, s.valid_from DESC) h;

    -- Index definitions that ended in the baseline or the window and were not replaced.
    SELECT coalesce(jsonb_agg(jsonb_build_object('datname', d.datname, 'schemaname', d.schemaname,
                                                 'relname', d.relname, 'indexrelname', d.indexrelname,
                                                 'indexdef', d.indexdef, 'columns', d.columns,
                                                 'dropped_at', d.valid_to)), '[]')
    INTO j_dropped
    FROM pganalytics.index_definitions d
    WHERE d.instance_id = iid AND d.valid_to >= b_from - interval '10 minutes' AND d.valid_to < p_to + c_noticed
      AND NOT EXISTS (SELECT FROM pganalytics.index_definitions c
                      WHERE c.instance_id = iid AND c.datname = d.datname AND c.schemaname = d.schemaname
                        AND c.indexrelname = d.indexrelname AND c.valid_from >= d.valid_to
                        AND c.valid_from < p_to + c_noticed);

    -- Plans of the top statements: the hashes seen in the baseline (else the newest one of the
    -- day before it: the plan in effect) and in the window, and the scans of the newest plan of
    -- each period (which relation, which index, filter). Not every hash of the day: a plan that
    -- was in use hours ago and comes back now is a change all the same.
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'queryid', x.queryid, 'b_hashes', x.b_hashes, 'w_hashes', x.w_hashes,
               'first_w_at', x.first_w_at, 'b_plan', x.b_plan, 'w_plan', x.w_plan)), '[]')
    INTO j_plans
    FROM (SELECT e.queryid,
                 coalesce(array_agg(DISTINCT e.plan_hash) FILTER (WHERE e.collected_at >= b_from AND e.collected_at < p_from),
                          array_remove(ARRAY[(array_agg(e.plan_hash ORDER BY e.collected_at DESC)
                                              FILTER (WHERE e.collected_at < p_from))[1]], NULL)) AS b_hashes,
                 (array_agg(DISTINCT e.plan_hash) FILTER (WHERE e.collected_at >= p_from)) AS w_hashes,
                 min(e.collected_at) FILTER (WHERE e.collected_at >= p_from) AS first_w_at,
                 (array_agg(e.execution_plan ORDER BY e.collected_at DESC) FILTER (WHERE e.collected_at < p_from))[1] AS b_plan,
                 (array_agg(e.execution_plan ORDER BY e.collected_at DESC) FILTER (WHERE e.collected_at >= p_from))[1] AS w_plan
          FROM pganalytics.query_executions e
          WHERE e.instance_id = iid AND e.queryid = ANY (top_ids)
            AND e.collected_at >= p_from - interval '1 day' AND e.collected_at < p_to
          GROUP BY 1) x;
    -- only the scans and the top node's estimates of each plan, not the whole document
    SELECT coalesce(jsonb_agg(p - 'b_plan' - 'w_plan' || jsonb_build_object(
               'b_scans', pganalytics.plan_scans(p -> 'b_plan'), 'w_scans', pganalytics.plan_scans(p -> 'w_plan'),
               'b_rows', (p #>> '{b_plan,0,Plan,Plan Rows}')::float8, 'w_rows', (p #>> '{w_plan,0,Plan,Plan Rows}')::float8,
               'b_cost', (p #>> '{b_plan,0,Plan,Total Cost}')::float8, 'w_cost', (p #>> '{w_plan,0,Plan,Total Cost}')::float8)), '[]')
    INTO j_plans
    FROM jsonb_array_elements(j_plans) p;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'queryid', a.queryid, 'datname', a.datname, 'schemaname', a.schemaname, 'relname', a.relname,
               'columns', a.columns, 'statement', a.create_statement, 'cost_before', a.cost_before,
               'cost_after', a.cost_after, 'verified_with', a.verified_with, 'at', a.collected_at)), '[]')
    INTO j_advice
    FROM (SELECT DISTINCT ON (a.queryid, a.create_statement) a.*
          FROM pganalytics.index_advice a
          WHERE a.instance_id = iid AND a.queryid = ANY (top_ids)
            AND a.collected_at >= b_from - interval '1 hour' AND a.collected_at < p_to
          ORDER BY a.queryid, a.create_statement, a.collected_at DESC) a;

    -- The learnt hour-of-week profiles (the newest trained anomaly model) of what the rules
    -- compare across periods: a window in an hour that is always busier (a nightly batch) is
    -- compared with what that hour usually adds, not only with the minutes before it. Each
    -- row is 168 big-endian float8 offsets from the series' level, NaN where not fitted (base64
    -- without the line breaks encode() puts every 76 characters).
    SELECT jsonb_build_object('version', m.version, 'trained_at', m.trained_at, 'rows',
               (SELECT coalesce(jsonb_object_agg(k.key, translate(encode(substring(m.week_profile FROM (k.i::int - 1) * 1344 + 1
                                                                                   FOR 1344), 'base64'), E'\n', '')), '{}')
                FROM unnest(m.keys) WITH ORDINALITY k(key, i)
                WHERE k.key IN ('high_cpu_usage/', 'high_io_wait/', 'memory_pressure/',
                                'connection_pool_saturation/', 'lock_contention_increase/')
                   OR k.key IN (SELECT 'execution_time_spike/queryid:' || t FROM unnest(top_ids) t)))
    INTO j_profile
    FROM pganalytics.anomaly_models m
    WHERE m.instance_id = iid
    ORDER BY m.version DESC
    LIMIT 1;

    RETURN jsonb_build_object(
        'instance', p_instance, 'queryid', p_queryid,
        'from', p_from, 'to', p_to, 'baseline_from', b_from,
        'seconds', jsonb_build_object('w', extract(epoch FROM p_to - p_from),
                                      'b', extract(epoch FROM p_from - b_from)),
        'resolution', res,
        'queries', j_queries, 'waits', j_waits, 'ticks', j_ticks,
        'locks', coalesce(j_locks, '{}'), 'blockers', j_blockers, 'idle_in_transaction', j_idle,
        'metrics', j_metrics, 'tables', coalesce(j_tables, '[]'), 'indexes', j_indexes,
        'settings', jsonb_build_object('changes', j_changes, 'current', j_current),
        'dropped_indexes', j_dropped, 'plans', j_plans, 'advice', j_advice, 'profile', j_profile);
END
$$;
COMMENT ON FUNCTION pganalytics.diagnosis_inputs(text, timestamptz, timestamptz, bigint) IS
    'the evidence root-cause analysis reads for an instance over a window and the baseline before it (JSON)';
REVOKE ALL ON FUNCTION pganalytics.diagnosis_inputs(text, timestamptz, timestamptz, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.diagnosis_inputs(text, timestamptz, timestamptz, bigint) TO pganalytics_admin;
