-- depends: store/roll_up_minutes.sql
-- depends: store/roll_up_coarser.sql
-- depends: ingest/retire_partitions.sql
-- depends: store/detect_live.sql
-- The store's housekeeping, meant to run every minute (the collector daemon calls it; pg_cron
-- can instead: see the README): roll up each instance's new complete minutes into 1m (and the
-- coarser levels whose buckets they complete), fold them into series_state, score the new
-- minutes' derived metrics for anomalies (detect_live(): events in pganalytics.anomalies),
-- rebuild minutes that late frames landed in, and drop partitions past their retention.
--
-- One call at a time: a second concurrent call returns at once ({"skipped": ...}). All of it
-- is one transaction, so a call killed halfway leaves nothing half-done and the next call
-- redoes it: no rollup is counted twice. A minute is "complete" for an instance once its own
-- newest sample is rollup.settle past the minute's end (sample time, not the store's clock:
-- a backfill rolls up as it loads). Each call rolls at most rollup.max_catchup per instance
-- (the answer's "behind" says to call again). Returns a summary (jsonb).
CREATE OR REPLACE FUNCTION pganalytics.maintain()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    started     timestamptz := clock_timestamp();
    settle      interval := (SELECT value::interval FROM pganalytics.store_settings WHERE name = 'rollup.settle');
    grace       interval := (SELECT value::interval FROM pganalytics.store_settings WHERE name = 'rollup.grace');
    catchup     interval := (SELECT value::interval FROM pganalytics.store_settings WHERE name = 'rollup.max_catchup');
    alpha       float8   := (SELECT value::float8 FROM pganalytics.store_settings WHERE name = 'state.ewma_alpha');
    prev        pg_snapshot;
    seen        pg_snapshot;
    w_ids       int[];
    w_from      timestamptz[];
    w_to        timestamptz[];
    chunk       record;
    step        record;
    late        record;
    behind      boolean;
    n_minutes   bigint := 0;
    n_rows      bigint := 0;
    n_state     bigint := 0;
    n_late      bigint := 0;
    n_coarse    bigint := 0;
    n_scored    bigint := 0;
    dropped     text[] := '{}';
    keep        record;
    summary     jsonb;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('pganalytics.maintain')) THEN
        RETURN jsonb_build_object('skipped', 'another maintain() is running');
    END IF;
    seen := pg_current_snapshot();  -- after the lock: what this call's reads see at least
    SELECT r.seen INTO prev FROM pganalytics.maintain_runs r ORDER BY r.run_id DESC LIMIT 1;

    -- 1. Late frames: stored by transactions the previous call could not see, in minutes it
    --    (or an earlier call) had already rolled up. Rebuilt from all their minute's frames.
    IF prev IS NOT NULL THEN
        FOR late IN
            SELECT array_agg(m.instance_id ORDER BY m.instance_id, m.minute) AS ids,
                   array_agg(m.minute ORDER BY m.instance_id, m.minute) AS t0,
                   array_agg(m.minute + interval '1 minute' ORDER BY m.instance_id, m.minute) AS t1
            FROM (SELECT DISTINCT f.instance_id,
                         date_bin('1 minute', f.ts, timestamptz '2001-01-01 00:00:00+00') AS minute
                  FROM pganalytics.sample_frames f
                  JOIN pganalytics.rollup_progress p ON p.instance_id = f.instance_id
                  WHERE f.stored_xid >= pg_snapshot_xmin(prev)
                    AND NOT pg_visible_in_snapshot(f.stored_xid, prev)
                    AND f.ts < p.rolled_until AND f.ts >= now() - grace) m
            HAVING count(*) > 0
        LOOP
            SELECT r.rollup_rows INTO step FROM pganalytics.roll_up_minutes(late.ids, late.t0, late.t1, false, alpha) r;
            n_late := cardinality(late.ids);
            -- one range per instance for the coarser levels: its first to last late minute
            SELECT n_coarse + pganalytics.roll_up_coarser(array_agg(g.instance_id), array_agg(g.t0), array_agg(g.t1),
                                                          array_agg(p.rolled_until))
            INTO n_coarse
            FROM (SELECT u.instance_id, min(u.t0) AS t0, max(u.t1) AS t1
                  FROM unnest(late.ids, late.t0, late.t1) AS u(instance_id, t0, t1) GROUP BY u.instance_id) g
            JOIN pganalytics.rollup_progress p ON p.instance_id = g.instance_id;
        END LOOP;
    END IF;

    -- 2. New complete minutes of every instance, in chunks of ~12,000 frames (~3 M samples),
    --    which bounds the memory of one rollup_minutes() call. Joins of materialized results,
    --    no correlated subquery: Citus plans those (reference/distributed tables joined to
    --    intermediate results), and on one server it is the same index range scan per instance.
    FOR chunk IN
        WITH inst AS MATERIALIZED (
            SELECT s.instance_id, s.last_seen_at FROM pganalytics.instance_seen s),
        prog AS MATERIALIZED (
            SELECT p.instance_id, p.rolled_until FROM pganalytics.rollup_progress p),
        firsts AS MATERIALIZED (
            SELECT f.instance_id, date_bin('1 minute', min(f.ts), timestamptz '2001-01-01 00:00:00+00') AS t0
            FROM pganalytics.sample_frames f
            WHERE f.instance_id = ANY (ARRAY(SELECT n.instance_id FROM inst n LEFT JOIN prog p USING (instance_id)
                                             WHERE p.instance_id IS NULL))
            GROUP BY f.instance_id),
        work AS MATERIALIZED (
            SELECT n.instance_id, w.t0,
                   least(date_bin('1 minute', n.last_seen_at - settle, timestamptz '2001-01-01 00:00:00+00'),
                         w.t0 + catchup) AS t1,
                   date_bin('1 minute', n.last_seen_at - settle, timestamptz '2001-01-01 00:00:00+00') AS goal
            FROM inst n
            LEFT JOIN prog p USING (instance_id)
            LEFT JOIN firsts fs USING (instance_id)
            CROSS JOIN LATERAL (SELECT coalesce(p.rolled_until, fs.t0) AS t0) w),
        counts AS MATERIALIZED (
            SELECT f.instance_id, count(*) AS frames
            FROM pganalytics.sample_frames f JOIN work k ON f.instance_id = k.instance_id
            WHERE f.ts >= k.t0 AND f.ts < k.t1 AND k.t1 > k.t0
            GROUP BY f.instance_id),
        sized AS (
            SELECT k.*, coalesce(c.frames, 0) AS frames
            FROM work k LEFT JOIN counts c USING (instance_id) WHERE k.t1 > k.t0),
        numbered AS (
            SELECT s.*, sum(s.frames) OVER (ORDER BY s.instance_id) AS upto FROM sized s)
        SELECT array_agg(n.instance_id ORDER BY n.instance_id) AS ids, array_agg(n.t0 ORDER BY n.instance_id) AS t0,
               array_agg(n.t1 ORDER BY n.instance_id) AS t1, bool_or(n.t1 < n.goal) AS behind,
               sum(extract(epoch FROM n.t1 - n.t0) / 60)::bigint AS minutes
        FROM numbered n GROUP BY (n.upto - 1)::bigint / 12000 ORDER BY 1  -- sum() of bigint is numeric
    LOOP
        SELECT * INTO step FROM pganalytics.roll_up_minutes(chunk.ids, chunk.t0, chunk.t1, true, alpha);
        n_rows := n_rows + step.rollup_rows;
        n_state := n_state + step.state_rows;
        n_minutes := n_minutes + chunk.minutes;
        behind := coalesce(behind, false) OR chunk.behind;
        n_coarse := n_coarse + pganalytics.roll_up_coarser(chunk.ids, chunk.t0, chunk.t1, chunk.t1);
        INSERT INTO pganalytics.rollup_progress AS p (instance_id, rolled_until)
        SELECT u.instance_id, u.t1 FROM unnest(chunk.ids, chunk.t1) AS u(instance_id, t1)
        ON CONFLICT (instance_id) DO UPDATE SET rolled_until = EXCLUDED.rolled_until;
        -- after rolled_until moves: anomaly_inputs() reads rolled-up minutes only
        n_scored := n_scored + pganalytics.detect_live(chunk.ids,
            ARRAY(SELECT extract(epoch FROM u.t)::float8 FROM unnest(chunk.t0) WITH ORDINALITY u (t, k) ORDER BY u.k),
            ARRAY(SELECT extract(epoch FROM u.t)::float8 FROM unnest(chunk.t1) WITH ORDINALITY u (t, k) ORDER BY u.k));
    END LOOP;

    -- 3. Retention: whole partitions, never DELETE.
    FOR keep IN SELECT * FROM (VALUES ('pganalytics.sample_frames'::regclass, 'retention.raw'),
                                      ('pganalytics.snapshots'::regclass, 'retention.raw'),
                                      ('pganalytics.rollups_1m'::regclass, 'retention.1m'),
                                      ('pganalytics.rollups_5m'::regclass, 'retention.5m'),
                                      ('pganalytics.rollups_15m'::regclass, 'retention.15m'),
                                      ('pganalytics.rollups_1h'::regclass, 'retention.1h'),
                                      ('pganalytics.query_stat_deltas'::regclass, 'retention.events'),
                                      ('pganalytics.wait_samples'::regclass, 'retention.events')) v(parent, setting)
    LOOP
        dropped := dropped || ARRAY(SELECT pganalytics.retire_partitions(keep.parent,
            now() - (SELECT value::interval FROM pganalytics.store_settings WHERE name = keep.setting)));
    END LOOP;

    summary := jsonb_build_object(
        'instance_minutes', n_minutes, 'rollup_rows', n_rows, 'state_rows', n_state,
        'late_minutes', n_late, 'coarser_rows', n_coarse, 'scored_points', n_scored, 'dropped', to_jsonb(dropped),
        'behind', coalesce(behind, false),
        'seconds', round(extract(epoch FROM clock_timestamp() - started)::numeric, 3));
    INSERT INTO pganalytics.maintain_runs (started_at, seen, summary) VALUES (started, seen, summary);
    DELETE FROM pganalytics.maintain_runs WHERE run_id <= (SELECT max(run_id) - 1000 FROM pganalytics.maintain_runs);
    RETURN summary;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.maintain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.maintain() TO pganalytics_collector, pganalytics_admin;
