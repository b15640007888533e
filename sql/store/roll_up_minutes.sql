-- depends: store/rollup_minutes.sql
-- depends: store/fold_minute.sql
-- Write the 1-minute rollups of the frames in each (instance, [from, to)) range of whole
-- minutes. Without p_feed_state (a rebuild after late frames) any rollup of the same minute
-- is replaced: a plain recompute, never an increment, so running it twice changes nothing.
-- With p_feed_state (new minutes) they are also folded into series_state, minute by minute
-- in time order (fold_minute(): Welford's step and one EWMA step a minute; counters feed
-- their per-second rate between consecutive minute ends, none across a reset), each step a
-- set-based statement over every instance of the chunk.
-- Internal to maintain(): runs as its caller. Returns (rollup rows, state rows).
CREATE OR REPLACE FUNCTION pganalytics.roll_up_minutes(
    p_instance_ids int[], p_from timestamptz[], p_to timestamptz[], p_feed_state boolean, p_alpha float8,
    OUT rollup_rows bigint, OUT state_rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- a rebuilt chunk's upsert, as in fold_minute()
AS $$
DECLARE
    step record;
    ids  int[];
    t0   timestamptz[];
    t1   timestamptz[];
BEGIN
    PERFORM pganalytics.ensure_partitions('pganalytics.rollups_1m', min(a), max(b))
    FROM unnest(p_from, p_to) AS r(a, b) HAVING count(*) > 0;
    IF NOT p_feed_state THEN
        INSERT INTO pganalytics.rollups_1m AS o (instance_id, series_id, bucket, n, sum, min, max, last)
        SELECT r.instance_id, r.series_id, to_timestamp(r.bucket), r.n, r.sum, r.min, r.max, r.last
        FROM pganalytics.rollup_minutes(p_instance_ids, p_from, p_to) AS r
        ON CONFLICT (instance_id, series_id, bucket) DO UPDATE
            SET n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last;
        GET DIAGNOSTICS rollup_rows = ROW_COUNT;
        state_rows := 0;
        RETURN;
    END IF;
    -- New minutes, fed to the state in time order: the k-th minute of every range at once.
    rollup_rows := 0;
    state_rows := 0;
    FOR k IN 0 .. coalesce((SELECT max(extract(epoch FROM r.b - r.a)::int / 60) FROM unnest(p_from, p_to) AS r(a, b)), 0) - 1 LOOP
        SELECT array_agg(r.i), array_agg(r.a + k * interval '1 minute'), array_agg(r.a + (k + 1) * interval '1 minute')
        INTO ids, t0, t1
        FROM unnest(p_instance_ids, p_from, p_to) AS r(i, a, b)
        WHERE r.a + k * interval '1 minute' < r.b;
        SELECT * INTO step FROM pganalytics.fold_minute(ids, t0, t1, p_alpha);
        rollup_rows := rollup_rows + step.rollup_rows;
        state_rows := state_rows + step.state_rows;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.roll_up_minutes(int[], timestamptz[], timestamptz[], boolean, float8) FROM PUBLIC;
