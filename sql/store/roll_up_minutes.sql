-- depends: store/rollup_minutes.sql
-- Write the 1-minute rollups of the frames in each (instance, [from, to)) range, replacing any
-- rollup of the same minute (a rebuild after late frames is a plain recompute, never an
-- increment: running it twice changes nothing). With p_feed_state, fold the new minutes into
-- series_state: Chan's parallel form of Welford's update for (n, mean, M2) and the EWMA of
-- k minutes at once, so a backlog is one set-based statement, not a loop. Counters feed their
-- per-second rate between consecutive minute ends (none across a reset). The series and their
-- state are read as materialized results of the chunk's instances and joined to the rows
-- written: Citus joins no intermediate result (the rows written) to distributed tables here.
-- Internal to maintain(): runs as its caller. Returns (rollup rows, state rows).
CREATE OR REPLACE FUNCTION pganalytics.roll_up_minutes(
    p_instance_ids int[], p_from timestamptz[], p_to timestamptz[], p_feed_state boolean, p_alpha float8,
    OUT rollup_rows bigint, OUT state_rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- a chunk is ~3 M samples, ~50,000 series-minutes: its joins and sorts spilled to disk at 4 MB
SET work_mem = '64MB'
AS $$
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
    IF (SELECT bool_and(r.b - r.a = interval '1 minute') FROM unnest(p_from, p_to) AS r(a, b)) THEN
        -- The steady state (maintain() every minute): one new minute a series, folded in by
        -- the upsert itself. Its proposed row is the state of a series seen for the first
        -- time (a gauge: n 1, its mean; a counter: n 0, no rate yet), which also tells the
        -- conflict branch the kind (n 1 or 0) and carries the minute's mean (gauges), last
        -- value and bucket; there, X is the value fed (the gauge's mean, or the counter's
        -- per-second rate since the state's minute; NULL across a reset) and Welford's step
        -- and one EWMA step read the old state (s.*). No join with the state, no sort.
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
                n = s.n + (CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                           END IS NOT NULL)::int,
                mean = coalesce(s.mean + (CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                               WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                               THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                                          END - s.mean) / (s.n + 1), s.mean),
                m2 = coalesce(s.m2 + (CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                           WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                           THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                                      END - s.mean)
                                   * (CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                           WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                           THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                                      END - s.mean) * s.n / (s.n + 1), s.m2),
                ewma = coalesce((1 - p_alpha) * s.ewma + p_alpha * (
                                    CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                         WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                         THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                                    END),
                                CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                     WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                     THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                                END, s.ewma),
                last_value = coalesce(CASE WHEN EXCLUDED.n = 1 THEN EXCLUDED.mean
                                           WHEN EXCLUDED.counter_last >= s.counter_last AND EXCLUDED.last_bucket > s.last_bucket
                                           THEN (EXCLUDED.counter_last - s.counter_last) / extract(epoch FROM EXCLUDED.last_bucket - s.last_bucket)
                                      END, s.last_value),
                last_bucket = EXCLUDED.last_bucket, counter_last = EXCLUDED.counter_last,
                updated_at = EXCLUDED.updated_at
            RETURNING 1)
        SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM folded) INTO rollup_rows, state_rows;
        RETURN;
    END IF;
    -- A backlog (k minutes a series): Chan's combination of the k minutes with the state.
    -- New minutes (at or after rolled_until) were never written: a plain INSERT, no conflict check.
    WITH written AS (
        INSERT INTO pganalytics.rollups_1m AS o (instance_id, series_id, bucket, n, sum, min, max, last)
        SELECT r.instance_id, r.series_id, to_timestamp(r.bucket), r.n, r.sum, r.min, r.max, r.last
        FROM pganalytics.rollup_minutes(p_instance_ids, p_from, p_to) AS r
        RETURNING o.instance_id, o.series_id, o.bucket, o.n, o.sum, o.last),
    kinds AS MATERIALIZED (
        SELECT se.instance_id, se.series_id, se.kind FROM pganalytics.series se
        WHERE se.instance_id = ANY (p_instance_ids)),
    states AS MATERIALIZED (
        SELECT st.* FROM pganalytics.series_state st WHERE st.instance_id = ANY (p_instance_ids)),
    -- one ordering for every window: newest minute first (lead() is the minute before)
    fed0 AS (
        SELECT w.instance_id, w.series_id, w.bucket, w.n, w.sum, w.last, se.kind, st.ewma AS old_ewma,
               coalesce(lead(w.last) OVER newest, st.counter_last) AS prev_last,
               coalesce(lead(w.bucket) OVER newest, st.last_bucket) AS prev_bucket
        FROM written w
        JOIN kinds se ON se.instance_id = w.instance_id AND se.series_id = w.series_id
        LEFT JOIN states st ON st.instance_id = w.instance_id AND st.series_id = w.series_id
        WINDOW newest AS (PARTITION BY w.instance_id, w.series_id ORDER BY w.bucket DESC)),
    fed AS (
        SELECT f.*, CASE WHEN f.kind = 'gauge' THEN f.sum / f.n
                         WHEN f.last >= f.prev_last AND f.bucket > f.prev_bucket
                         THEN (f.last - f.prev_last) / extract(epoch FROM f.bucket - f.prev_bucket) END AS x
        FROM fed0 f),
    ranked AS (  -- from_end: 1 for the newest value fed, 2 for the one before, ...
        SELECT f.*, count(f.x) OVER (PARTITION BY f.instance_id, f.series_id ORDER BY f.bucket DESC) AS from_end
        FROM fed f),
    batch AS (
        SELECT r.instance_id, r.series_id, count(r.x) AS k, coalesce(avg(r.x), 0) AS mean,
               coalesce(var_pop(r.x) * count(r.x), 0) AS m2,
               -- EWMA over the k new values, seeded with the old EWMA (the first value if none)
               CASE WHEN count(r.x) = 0 THEN max(r.old_ewma)
                    ELSE power(1 - p_alpha, count(r.x))
                         * coalesce(max(r.old_ewma), (array_agg(r.x ORDER BY r.bucket) FILTER (WHERE r.x IS NOT NULL))[1])
                         + sum(p_alpha * power(1 - p_alpha, r.from_end - 1) * r.x) END AS ewma,
               max(r.bucket) AS last_bucket,
               (array_agg(r.last ORDER BY r.bucket DESC))[1] AS counter_last,
               (array_agg(r.x ORDER BY r.bucket DESC) FILTER (WHERE r.x IS NOT NULL))[1] AS last_x
        FROM ranked r GROUP BY r.instance_id, r.series_id),
    folded AS (
        INSERT INTO pganalytics.series_state AS s
            (instance_id, series_id, n, mean, m2, ewma, last_value, last_bucket, counter_last, updated_at)
        SELECT b.instance_id, b.series_id, b.k, b.mean, b.m2, b.ewma, b.last_x, b.last_bucket, b.counter_last, now()
        FROM batch b
        ON CONFLICT (instance_id, series_id) DO UPDATE SET
            n = s.n + EXCLUDED.n,
            mean = CASE WHEN EXCLUDED.n = 0 THEN s.mean
                        ELSE s.mean + (EXCLUDED.mean - s.mean) * EXCLUDED.n / (s.n + EXCLUDED.n) END,
            m2 = CASE WHEN EXCLUDED.n = 0 THEN s.m2
                      ELSE s.m2 + EXCLUDED.m2 + (EXCLUDED.mean - s.mean) ^ 2 * s.n * EXCLUDED.n / (s.n + EXCLUDED.n) END,
            ewma = EXCLUDED.ewma,
            last_value = coalesce(EXCLUDED.last_value, s.last_value),
            last_bucket = greatest(s.last_bucket, EXCLUDED.last_bucket),
            counter_last = EXCLUDED.counter_last,
            updated_at = EXCLUDED.updated_at
        RETURNING 1)
    SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM folded) INTO rollup_rows, state_rows;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.roll_up_minutes(int[], timestamptz[], timestamptz[], boolean, float8) FROM PUBLIC;
