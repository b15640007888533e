-- PG 18+: the same result as merge_query_stats.sql with query_stats joined ONCE: MERGE ...
-- RETURNING old.* hands the previous counters to the deltas INSERT, where 15-17 need a second
-- join (measured 1.14-1.22x faster on 18: bench/upsert_merge_vs_on_conflict.py, method e).
-- A reset is decided inside the MERGE (resets + 1) and read back as new.resets > old.resets.
CREATE OR REPLACE FUNCTION pganalytics.merge_query_stats(
    p_instance_id int, p_collected_at timestamptz, prev_at timestamptz, p_stats_reset timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $$
DECLARE
    merged bigint;
BEGIN
    WITH u AS (
        MERGE INTO pganalytics.query_stats t
        USING pg_temp.stage_query_stats s
           ON t.instance_id = p_instance_id AND t.dbid = s.dbid AND t.userid = s.userid
          AND t.queryid = s.queryid AND t.toplevel = s.toplevel
        -- unchanged entries: no update (see merge_query_stats.sql), so RETURNING skips them too
        WHEN MATCHED AND (s.calls <> t.calls OR s.plans <> t.plans OR s.total_exec_time < t.total_exec_time
                          OR s.stats_since IS DISTINCT FROM t.stats_since
                          OR (p_stats_reset IS NOT NULL AND p_stats_reset > prev_at)) THEN UPDATE SET
            collected_at = p_collected_at, stats_since = s.stats_since,
            resets = t.resets + (s.calls < t.calls OR s.total_exec_time < t.total_exec_time
                                 OR s.stats_since IS DISTINCT FROM t.stats_since
                                 OR (p_stats_reset IS NOT NULL AND p_stats_reset > prev_at))::int,
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
             s.shared_blk_write_time, s.wal_records, s.wal_fpi, s.wal_bytes)
        RETURNING new.dbid, new.userid, new.queryid, new.toplevel, new.calls, new.plans,
                  new.total_plan_time, new.total_exec_time, new.stddev_exec_time, new.mean_exec_time,
                  new.rows, new.shared_blks_hit, new.shared_blks_read, new.shared_blks_dirtied,
                  new.shared_blks_written, new.temp_blks_read, new.temp_blks_written,
                  new.shared_blk_read_time, new.wal_bytes,
                  old.calls AS o_calls, old.plans AS o_plans, old.total_plan_time AS o_plan_time,
                  old.total_exec_time AS o_exec_time,
                  old.calls * (old.stddev_exec_time ^ 2 + old.mean_exec_time ^ 2) AS o_sq,
                  old.rows AS o_rows, old.shared_blks_hit AS o_hit, old.shared_blks_read AS o_read,
                  old.shared_blks_dirtied AS o_dirtied, old.shared_blks_written AS o_written,
                  old.temp_blks_read AS o_tread, old.temp_blks_written AS o_twritten,
                  old.shared_blk_read_time AS o_read_time, old.wal_bytes AS o_wal,
                  coalesce(new.resets > old.resets, false) AS was_reset
    ), base AS (
        SELECT u.*, (o_calls IS NULL OR was_reset) AS from_zero FROM u
    ), deltas AS (
        INSERT INTO pganalytics.query_stat_deltas
            (instance_id, dbid, userid, queryid, toplevel, collected_at, interval_s, after_reset,
             calls, plans, total_plan_time, total_exec_time, exec_time_sq, rows,
             shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written,
             temp_blks_read, temp_blks_written, shared_blk_read_time, wal_bytes)
        SELECT p_instance_id, dbid, userid, queryid, toplevel, p_collected_at,
               extract(epoch FROM p_collected_at - prev_at), was_reset,
               calls - CASE WHEN from_zero THEN 0 ELSE o_calls END,
               plans - CASE WHEN from_zero THEN 0 ELSE o_plans END,
               total_plan_time - CASE WHEN from_zero THEN 0 ELSE o_plan_time END,
               total_exec_time - CASE WHEN from_zero THEN 0 ELSE o_exec_time END,
               greatest(calls * (stddev_exec_time ^ 2 + mean_exec_time ^ 2)
                        - CASE WHEN from_zero THEN 0 ELSE o_sq END, 0),
               rows - CASE WHEN from_zero THEN 0 ELSE o_rows END,
               greatest(shared_blks_hit - CASE WHEN from_zero THEN 0 ELSE o_hit END, 0),
               greatest(shared_blks_read - CASE WHEN from_zero THEN 0 ELSE o_read END, 0),
               greatest(shared_blks_dirtied - CASE WHEN from_zero THEN 0 ELSE o_dirtied END, 0),
               greatest(shared_blks_written - CASE WHEN from_zero THEN 0 ELSE o_written END, 0),
               greatest(temp_blks_read - CASE WHEN from_zero THEN 0 ELSE o_tread END, 0),
               greatest(temp_blks_written - CASE WHEN from_zero THEN 0 ELSE o_twritten END, 0),
               greatest(shared_blk_read_time - CASE WHEN from_zero THEN 0 ELSE o_read_time END, 0),
               greatest(wal_bytes - CASE WHEN from_zero THEN 0 ELSE o_wal END, 0)
        FROM base
        WHERE prev_at IS NOT NULL AND (from_zero OR calls <> o_calls OR plans <> o_plans)
          AND calls > 0
        RETURNING 1
    )
    SELECT count(*) INTO merged FROM base;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.merge_query_stats(int, timestamptz, timestamptz, timestamptz) FROM PUBLIC;
