-- Fold one staged pg_stat_statements snapshot (pg_temp.stage_query_stats) into the store in
-- ONE statement: per-interval deltas are computed against the previous counters and MERGE
-- updates the counters, both reading the same snapshot of query_stats.
--
-- Resets never produce negative or huge deltas: an entry counts as reset when its calls or
-- total time went down, its stats_since (PG 17+) changed, or pg_stat_statements_info's
-- stats_reset moved past the previous snapshot; its delta is then its whole current value
-- (everything since the reset happened inside this interval). A new entry seen after a
-- previous snapshot also contributes its whole value. A snapshot older than what is stored
-- (a late replay) updates nothing.
CREATE OR REPLACE FUNCTION pganalytics.ingest_query_stats(
    p_instance_id  int,
    p_collected_at timestamptz,
    p_dealloc      bigint DEFAULT NULL,
    p_stats_reset  timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev_at    timestamptz;
    prev_reset timestamptz;
    merged     bigint;
BEGIN
    IF p_instance_id IS NULL OR p_collected_at IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats: instance and collected_at must not be null';
    END IF;
    IF to_regclass('pg_temp.stage_query_stats') IS NULL THEN
        RAISE EXCEPTION 'ingest_query_stats: no staged snapshot in this session'
            USING HINT = 'call pganalytics.open_staging() and COPY into stage_query_stats first';
    END IF;
    IF EXISTS (SELECT FROM pg_temp.stage_query_stats
               GROUP BY dbid, userid, queryid, toplevel HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'ingest_query_stats: the staged snapshot holds an entry twice'
            USING ERRCODE = 'cardinality_violation',
                  HINT = 'stage each (dbid, userid, queryid, toplevel) once';
    END IF;
    IF NOT pganalytics.begin_snapshot(p_instance_id, 'query_stats', p_collected_at) THEN
        RETURN 0;  -- already delivered
    END IF;

    SELECT collected_at, stats_reset INTO prev_at, prev_reset
    FROM pganalytics.pgss_info WHERE instance_id = p_instance_id FOR UPDATE;
    IF prev_at IS NOT NULL AND p_collected_at <= prev_at THEN
        -- A late replay of an older snapshot: keep the ledger row, change no counters.
        RETURN 0;
    END IF;
    INSERT INTO pganalytics.pgss_info AS i (instance_id, collected_at, dealloc, stats_reset)
    VALUES (p_instance_id, p_collected_at, coalesce(p_dealloc, 0), p_stats_reset)
    ON CONFLICT (instance_id) DO UPDATE
        SET collected_at = EXCLUDED.collected_at, dealloc = EXCLUDED.dealloc, stats_reset = EXCLUDED.stats_reset;

    INSERT INTO pganalytics.query_texts (instance_id, queryid, query, first_seen_at)
    SELECT DISTINCT ON (queryid) p_instance_id, queryid, query, p_collected_at
    FROM pg_temp.stage_query_stats WHERE query IS NOT NULL
    ON CONFLICT DO NOTHING;

    IF prev_at IS NOT NULL THEN
        PERFORM pganalytics.ensure_partitions('pganalytics.query_stat_deltas', p_collected_at, p_collected_at);
    END IF;

    WITH cmp AS (
        SELECT s.*, t.collected_at AS t_at,
               t.calls AS t_calls, t.plans AS t_plans, t.total_plan_time AS t_plan_time,
               t.total_exec_time AS t_exec_time,
               -- sum of squares = n * (stddev^2 + mean^2) (pg_stat_statements keeps population stddev)
               t.calls * (t.stddev_exec_time ^ 2 + t.mean_exec_time ^ 2) AS t_sq,
               t.rows AS t_rows, t.shared_blks_hit AS t_hit, t.shared_blks_read AS t_read,
               t.shared_blks_dirtied AS t_dirtied, t.shared_blks_written AS t_written,
               t.temp_blks_read AS t_tread, t.temp_blks_written AS t_twritten,
               t.shared_blk_read_time AS t_read_time, t.wal_bytes AS t_wal,
               (t.calls IS NOT NULL AND (
                    s.calls < t.calls OR s.total_exec_time < t.total_exec_time
                    OR s.stats_since IS DISTINCT FROM t.stats_since
                    OR (p_stats_reset IS NOT NULL AND p_stats_reset > t.collected_at))) AS was_reset
        FROM pg_temp.stage_query_stats s
        LEFT JOIN pganalytics.query_stats t
          ON t.instance_id = p_instance_id AND t.dbid = s.dbid AND t.userid = s.userid
         AND t.queryid = s.queryid AND t.toplevel = s.toplevel
    ), base AS (
        -- the counters this interval starts from: zero for new or reset entries
        SELECT cmp.*, (t_calls IS NULL OR was_reset) AS from_zero FROM cmp
    ), deltas AS (
        INSERT INTO pganalytics.query_stat_deltas
            (instance_id, dbid, userid, queryid, toplevel, collected_at, interval_s, after_reset,
             calls, plans, total_plan_time, total_exec_time, exec_time_sq, rows,
             shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written,
             temp_blks_read, temp_blks_written, shared_blk_read_time, wal_bytes)
        SELECT p_instance_id, dbid, userid, queryid, toplevel, p_collected_at,
               extract(epoch FROM p_collected_at - prev_at), was_reset,
               calls - CASE WHEN from_zero THEN 0 ELSE t_calls END,
               plans - CASE WHEN from_zero THEN 0 ELSE t_plans END,
               total_plan_time - CASE WHEN from_zero THEN 0 ELSE t_plan_time END,
               total_exec_time - CASE WHEN from_zero THEN 0 ELSE t_exec_time END,
               greatest(calls * (stddev_exec_time ^ 2 + mean_exec_time ^ 2)
                        - CASE WHEN from_zero THEN 0 ELSE t_sq END, 0),
               rows - CASE WHEN from_zero THEN 0 ELSE t_rows END,
               greatest(shared_blks_hit - CASE WHEN from_zero THEN 0 ELSE t_hit END, 0),
               greatest(shared_blks_read - CASE WHEN from_zero THEN 0 ELSE t_read END, 0),
               greatest(shared_blks_dirtied - CASE WHEN from_zero THEN 0 ELSE t_dirtied END, 0),
               greatest(shared_blks_written - CASE WHEN from_zero THEN 0 ELSE t_written END, 0),
               greatest(temp_blks_read - CASE WHEN from_zero THEN 0 ELSE t_tread END, 0),
               greatest(temp_blks_written - CASE WHEN from_zero THEN 0 ELSE t_twritten END, 0),
               greatest(shared_blk_read_time - CASE WHEN from_zero THEN 0 ELSE t_read_time END, 0),
               greatest(wal_bytes - CASE WHEN from_zero THEN 0 ELSE t_wal END, 0)
        FROM base
        -- Only once a previous snapshot bounds the interval, and only entries that ran in it.
        WHERE prev_at IS NOT NULL AND (from_zero OR calls <> t_calls OR plans <> t_plans)
          AND calls > 0
    )
    MERGE INTO pganalytics.query_stats t
    USING base s
       ON t.instance_id = p_instance_id AND t.dbid = s.dbid AND t.userid = s.userid
      AND t.queryid = s.queryid AND t.toplevel = s.toplevel
    WHEN MATCHED THEN UPDATE SET
        collected_at = p_collected_at, stats_since = s.stats_since,
        resets = t.resets + s.was_reset::int,
        plans = s.plans, total_plan_time = s.total_plan_time, calls = s.calls,
        total_exec_time = s.total_exec_time, min_exec_time = s.min_exec_time,
        max_exec_time = s.max_exec_time, mean_exec_time = s.mean_exec_time,
        stddev_exec_time = s.stddev_exec_time, rows = s.rows,
        shared_blks_hit = s.shared_blks_hit, shared_blks_read = s.shared_blks_read,
        shared_blks_dirtied = s.shared_blks_dirtied, shared_blks_written = s.shared_blks_written,
        local_blks_hit = s.local_blks_hit, local_blks_read = s.local_blks_read,
        temp_blks_read = s.temp_blks_read, temp_blks_written = s.temp_blks_written,
        shared_blk_read_time = s.shared_blk_read_time, shared_blk_write_time = s.shared_blk_write_time,
        wal_records = s.wal_records, wal_fpi = s.wal_fpi, wal_bytes = s.wal_bytes
    WHEN NOT MATCHED THEN INSERT
        (instance_id, dbid, userid, queryid, toplevel, collected_at, first_seen_at, stats_since,
         plans, total_plan_time, calls, total_exec_time, min_exec_time, max_exec_time,
         mean_exec_time, stddev_exec_time, rows, shared_blks_hit, shared_blks_read,
         shared_blks_dirtied, shared_blks_written, local_blks_hit, local_blks_read,
         temp_blks_read, temp_blks_written, shared_blk_read_time, shared_blk_write_time,
         wal_records, wal_fpi, wal_bytes)
    VALUES
        (p_instance_id, s.dbid, s.userid, s.queryid, s.toplevel, p_collected_at, p_collected_at,
         s.stats_since, s.plans, s.total_plan_time, s.calls, s.total_exec_time, s.min_exec_time,
         s.max_exec_time, s.mean_exec_time, s.stddev_exec_time, s.rows, s.shared_blks_hit,
         s.shared_blks_read, s.shared_blks_dirtied, s.shared_blks_written, s.local_blks_hit,
         s.local_blks_read, s.temp_blks_read, s.temp_blks_written, s.shared_blk_read_time,
         s.shared_blk_write_time, s.wal_records, s.wal_fpi, s.wal_bytes);
    GET DIAGNOSTICS merged = ROW_COUNT;
    UPDATE pganalytics.snapshots SET row_count = merged
    WHERE instance_id = p_instance_id AND source = 'query_stats' AND collected_at = p_collected_at;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_query_stats(int, timestamptz, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_query_stats(int, timestamptz, bigint, timestamptz) TO pganalytics_collector;
