-- Per-interval deltas, then the counters' MERGE: the INSERT computes the deltas against the
-- previous counters, then MERGE replaces them (two statements, not a data-modifying CTE in
-- the MERGE: Citus supports no CTE with modifying actions in MERGE, and it reads the staged
-- rows directly as the MERGE source); within this call nothing else writes the instance's
-- query_stats, so both read the same counters. The one place the delta and reset rules live
-- (see ingest_query_stats() for them), on every server version. Reads the rows that
-- transaction p_xid staged under p_batch_no. Called by ingest_query_stats() only, as the
-- store's owner (not SECURITY DEFINER: nobody else may call it). Returns the entries merged.
-- Entries that did not run in the interval are left alone (no dead tuple, no WAL): their
-- collected_at is when they last changed. A global reset is one after the previous snapshot.
-- Measured (bench/upsert_merge_vs_on_conflict.py): the planner's hash join is right, the
-- staged rows should arrive sorted by key (the collector does), a larger work_mem helps.
CREATE OR REPLACE FUNCTION pganalytics.merge_query_stats(
    p_xid xid8, p_batch_no int, p_instance_id int, p_collected_at timestamptz, prev_at timestamptz,
    p_stats_reset timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $$
DECLARE
    merged bigint;
BEGIN
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
                    OR (p_stats_reset IS NOT NULL AND p_stats_reset > prev_at))) AS was_reset
        FROM pganalytics.query_stats_stage s
        LEFT JOIN pganalytics.query_stats t
          ON t.instance_id = p_instance_id AND t.dbid = s.dbid AND t.userid = s.userid
         AND t.queryid = s.queryid AND t.toplevel = s.toplevel
        WHERE s.stage_xid = p_xid AND s.batch_no = p_batch_no
    ), base AS (
        -- the counters this interval starts from: zero for new or reset entries
        SELECT cmp.*, (t_calls IS NULL OR was_reset) AS from_zero FROM cmp
    )
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
          AND calls > 0;
    MERGE INTO pganalytics.query_stats t
    USING (SELECT p_instance_id AS instance_id, st.* FROM pganalytics.query_stats_stage st
           WHERE st.stage_xid = p_xid AND st.batch_no = p_batch_no) s
       ON t.instance_id = s.instance_id AND t.dbid = s.dbid AND t.userid = s.userid
      AND t.queryid = s.queryid AND t.toplevel = s.toplevel
    WHEN MATCHED AND (s.calls <> t.calls OR s.plans <> t.plans OR s.total_exec_time < t.total_exec_time
         OR s.stats_since IS DISTINCT FROM t.stats_since OR (p_stats_reset IS NOT NULL AND p_stats_reset > prev_at)) THEN UPDATE SET
        collected_at = p_collected_at, stats_since = s.stats_since,
        resets = t.resets + (s.calls < t.calls OR s.total_exec_time < t.total_exec_time OR s.stats_since IS DISTINCT FROM t.stats_since
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
        (s.instance_id, s.dbid, s.userid, s.queryid, s.toplevel, p_collected_at, p_collected_at,
         s.stats_since, s.plans, s.total_plan_time, s.calls, s.total_exec_time, s.min_exec_time,
         s.max_exec_time, s.mean_exec_time, s.stddev_exec_time, s.rows, s.shared_blks_hit,
         s.shared_blks_read, s.shared_blks_dirtied, s.shared_blks_written, s.local_blks_hit,
         s.local_blks_read, s.temp_blks_read, s.temp_blks_written, s.shared_blk_read_time,
         s.shared_blk_write_time, s.wal_records, s.wal_fpi, s.wal_bytes);
    GET DIAGNOSTICS merged = ROW_COUNT;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.merge_query_stats(xid8, int, int, timestamptz, timestamptz, timestamptz) FROM PUBLIC;
