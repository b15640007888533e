-- depends: store/rollup_minutes.sql
-- Write the 1-minute rollups of ONE minute per instance ([from, to) is one minute, after the
-- minute its state was last fed) and fold them into series_state. The steady state of
-- maintain() (a call a minute), and its catch-up step (roll_up_minutes() calls it minute by
-- minute over a backlog: per series-minute as cheap as the steady state, where a set-based
-- Chan combination of k minutes sorted and windowed every row and cost more).
-- Internal to maintain(): runs as its caller. Returns (rollup rows, state rows).
CREATE OR REPLACE FUNCTION pganalytics.fold_minute(
    p_instance_ids int[], p_from timestamptz[], p_to timestamptz[], p_alpha float8,
    OUT rollup_rows bigint, OUT state_rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- a chunk is ~3 M samples, ~50,000 series-minutes: its joins spilled to disk at 4 MB
SET work_mem = '64MB'
AS $$
BEGIN
    -- One new minute a series, folded in by the upsert itself. Its proposed row is the
    -- state of a series seen for the first time (a gauge: n 1, its mean; a counter: n 0, no
    -- rate yet), which also tells the conflict branch the kind (n 1 or 0) and carries the
    -- minute's mean (gauges), last value and bucket; there, x is the value fed (the gauge's
    -- mean, or the counter's per-second rate since the state's minute; NULL across a reset)
    -- and Welford's step and one EWMA step read the old state (s.*). No join with the
    -- state, no sort.
    WITH written AS (
        INSERT INTO pganalytics.rollups_1m AS o (instance_id, series_id, bucket, n, sum, min, max, last)
        SELECT r.instance_id, r.series_id, to_timestamp(r.bucket), r.n, r.sum, r.min, r.max, r.last
        FROM pganalytics.rollup_minutes(p_instance_ids, p_from, p_to) AS r
        RETURNING o.instance_id, o.series_id, o.bucket, o.n, o.sum, o.last),
    kinds AS MATERIALIZED (
        SELECT se.instance_id, se.series_id, se.kind = 'gauge' AS gauge FROM pganalytics.series se
        WHERE se.instance_id = ANY (p_instance_ids)),
    folded AS (
        INSERT INTO pganalytics.series_state AS s
            (instance_id, series_id, n, mean, m2, ewma, last_value, last_bucket, counter_last, updated_at)
        SELECT w.instance_id, w.series_id, k.gauge::int, CASE WHEN k.gauge THEN w.sum / w.n ELSE 0 END, 0,
               CASE WHEN k.gauge THEN w.sum / w.n END, CASE WHEN k.gauge THEN w.sum / w.n END,
               w.bucket, w.last, now()
        FROM written w JOIN kinds k ON k.instance_id = w.instance_id AND k.series_id = w.series_id
        ON CONFLICT (instance_id, series_id) DO UPDATE SET
            (n, mean, m2, ewma, last_value) = (
                SELECT s.n + (v.x IS NOT NULL)::int,
                       coalesce(s.mean + (v.x - s.mean) / (s.n + 1), s.mean),
                       coalesce(s.m2 + (v.x - s.mean) * (v.x - s.mean) * s.n / (s.n + 1), s.m2),
                       coalesce((1 - p_alpha) * s.ewma + p_alpha * v.x, v.x, s.ewma),
                       coalesce(v.x, s.last_value)
                FROM (SELECT CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                  WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                  THEN (EXCLUDED.counter_last - s.counter_last)
                                       / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket) END AS x) v),
            last_bucket = EXCLUDED.last_bucket, counter_last = EXCLUDED.counter_last,
            updated_at = EXCLUDED.updated_at
        RETURNING 1)
    SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM folded) INTO rollup_rows, state_rows;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.fold_minute(int[], timestamptz[], timestamptz[], float8) FROM PUBLIC;
