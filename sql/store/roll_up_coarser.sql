-- Rebuild the coarser rollups (5m from 1m, 15m from 5m, 1h from 15m) of the buckets that
-- overlap each (instance, [from, to)) range of changed minutes and are complete (end by the
-- instance's rolled_until, p_complete); each a recompute from the finer level, so a late
-- minute folded into 1m reaches 1h in the same call. Ranges must not overlap per instance.
-- Internal to maintain(): runs as its caller. Returns the rows written.
CREATE OR REPLACE FUNCTION pganalytics.roll_up_coarser(p_instance_ids int[], p_from timestamptz[], p_to timestamptz[], p_complete timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- keeps a whole chunk's sort for array_agg(... ORDER BY) in memory
AS $$
DECLARE
    level   record;
    written bigint := 0;
    n       bigint;
BEGIN
    FOR level IN SELECT * FROM (VALUES ('rollups_5m', 'rollups_1m', interval '5 minutes', 1),
                                       ('rollups_15m', 'rollups_5m', interval '15 minutes', 2),
                                       ('rollups_1h', 'rollups_15m', interval '1 hour', 3)) v(target, source, width, ord)
                 ORDER BY ord
    LOOP
        PERFORM pganalytics.ensure_partitions(('pganalytics.' || level.target)::regclass, min(a), max(b))
        FROM unnest(p_from, p_complete) AS r(a, b) HAVING count(*) > 0;
        EXECUTE pg_catalog.format($sql$
            WITH w AS MATERIALIZED (
                SELECT u.instance_id, date_bin($4, u.t0, timestamptz '2001-01-01 00:00:00+00') AS lo,
                       least(date_bin($4, u.t1 - interval '1 microsecond', timestamptz '2001-01-01 00:00:00+00') + $4,
                             date_bin($4, u.done, timestamptz '2001-01-01 00:00:00+00')) AS hi
                FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[], $5::timestamptz[]) AS u(instance_id, t0, t1, done)),
            -- the instances where a bucket of this level completed, with their series: the finer
            -- rows are read by the key (instance_id, series_id, bucket), a probe per series, not
            -- by instance_id alone, which would walk every series' whole day at every call
            todo AS MATERIALIZED (
                SELECT w.instance_id, w.lo, w.hi, array_agg(s.series_id ORDER BY s.series_id) AS series_ids
                FROM w JOIN pganalytics.series s ON s.instance_id = w.instance_id
                WHERE w.lo < w.hi
                GROUP BY w.instance_id, w.lo, w.hi)
            INSERT INTO pganalytics.%1$I AS o (instance_id, series_id, bucket, n, sum, min, max, last)
            SELECT r.instance_id, r.series_id, date_bin($4, r.bucket, timestamptz '2001-01-01 00:00:00+00'),
                   sum(r.n), sum(r.sum), min(r.min), max(r.max), (array_agg(r.last ORDER BY r.bucket DESC))[1]
            FROM todo t
            JOIN pganalytics.%2$I r ON r.instance_id = t.instance_id AND r.series_id = ANY (t.series_ids)
             AND r.bucket >= t.lo AND r.bucket < t.hi
            GROUP BY 1, 2, 3
            ON CONFLICT (instance_id, series_id, bucket) DO UPDATE
                SET n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last
            $sql$, level.target, level.source)
        USING p_instance_ids, p_from, p_to, level.width, p_complete;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END LOOP;
    RETURN written;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.roll_up_coarser(int[], timestamptz[], timestamptz[], timestamptz[]) FROM PUBLIC;
