-- depends: store/rollup_minutes.sql
-- Write the 1-minute rollups of the frames in each (instance, [from, to)) range of whole
-- minutes. Without p_feed_state (a rebuild after late frames) any rollup of the same minute
-- is replaced: a plain recompute, never an increment, so running it twice changes nothing.
-- With p_feed_state (new minutes) they are also folded into the series state, each
-- instance's minutes in time order (Welford's step and one EWMA step a minute; counters feed
-- their per-second rate between consecutive minute ends, none across a reset): in numpy, in
-- the same pass over the frames (rollup_minute_groups()).
-- Internal to maintain(): runs as its caller. Returns (rollup rows, state rows: series-minutes
-- folded).
CREATE OR REPLACE FUNCTION pganalytics.roll_up_minutes(
    p_instance_ids int[], p_from timestamptz[], p_to timestamptz[], p_feed_state boolean, p_alpha float8,
    OUT rollup_rows bigint, OUT state_rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- a chunk is ~3 M samples, ~50,000 series-minutes: its joins spilled to disk at 4 MB
SET work_mem = '64MB'
AS $$
BEGIN
    PERFORM pganalytics.ensure_partitions('pganalytics.rollups_1m', min(a), max(b))
    FROM unnest(p_from, p_to) AS r(a, b) HAVING count(*) > 0;
    IF p_feed_state THEN
        INSERT INTO pganalytics.rollups_1m (instance_id, series_id, bucket, n, sum, min, max, last)
        SELECT r.instance_id, r.series_id, to_timestamp(r.bucket), r.n, r.sum, r.min, r.max, r.last
        FROM pganalytics.rollup_minutes(p_instance_ids, p_from, p_to, p_alpha) AS r;
        GET DIAGNOSTICS rollup_rows = ROW_COUNT;
        state_rows := rollup_rows;  -- every series-minute rolled up is folded
        RETURN;
    END IF;
    INSERT INTO pganalytics.rollups_1m AS o (instance_id, series_id, bucket, n, sum, min, max, last)
    SELECT r.instance_id, r.series_id, to_timestamp(r.bucket), r.n, r.sum, r.min, r.max, r.last
    FROM pganalytics.rollup_minutes(p_instance_ids, p_from, p_to) AS r
    ON CONFLICT (instance_id, series_id, bucket) DO UPDATE
        SET n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last;
    GET DIAGNOSTICS rollup_rows = ROW_COUNT;
    state_rows := 0;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.roll_up_minutes(int[], timestamptz[], timestamptz[], boolean, float8) FROM PUBLIC;
