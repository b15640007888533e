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
-- The rows are anomaly_inputs_many()'s of this one instance (the live path reads many at once).
-- SECURITY DEFINER: it reads the store's tables (series, rollups, query deltas, settings),
-- which the admin role may not read directly; fully qualified names, pinned search_path.
-- depends: analytics/anomaly_types.sql
-- depends: analytics/anomaly_inputs_many.sql
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
    unknown   text;
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
    -- One definition of the derived metrics, shared with the live path's many-instance read.
    RETURN QUERY
    SELECT m.anomaly_type, m.subject, m.bucket, m.value, m.context
    FROM pganalytics.anomaly_inputs_many(ARRAY[p_instance_id], ARRAY[p_from], ARRAY[p_to], p_types, p_queryids) m
    ORDER BY 1, 2, 3;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_inputs(int, timestamptz, timestamptz, text[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.anomaly_inputs(int, timestamptz, timestamptz, text[], bigint[]) TO pganalytics_admin;
