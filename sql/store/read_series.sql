-- One metric of one instance over [p_from, p_to): every series of it (or those whose labels
-- contain p_labels), at a resolution: 'raw', '1m', '5m', '15m', '1h', or 'auto' (the finest
-- giving at most ~1,000 points per series that its retention still covers). A counter comes
-- out as a per-second rate (a reset counts from zero); a gauge as its bucket mean, with the
-- bucket's min, max and sample count. Rollup reads go through the (instance, series, bucket)
-- key of one table: no other series is read. The newest buckets not rolled up yet come from
-- the raw frames of that instance alone (at most rollup.settle plus one bucket).
-- depends: store/frame_values.sql
-- depends: store/frame_value.sql
CREATE OR REPLACE FUNCTION pganalytics.read_series(
    p_instance   text,
    p_metric     text,
    p_from       timestamptz,
    p_to         timestamptz,
    p_resolution text  DEFAULT 'auto',
    p_labels     jsonb DEFAULT NULL)
RETURNS TABLE (series_id int, labels jsonb, ts timestamptz, value float8, min float8, max float8,
               n int, resolution text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    iid     int;
    res     text := lower(p_resolution);
    width   interval;
    done    timestamptz;
    origin  CONSTANT timestamptz := timestamptz '2001-01-01 00:00:00+00';
    levels  CONSTANT text[] := ARRAY['raw', '1m', '5m', '15m', '1h'];
    widths  CONSTANT interval[] := ARRAY[interval '0', interval '1 minute', interval '5 minutes',
                                         interval '15 minutes', interval '1 hour'];
    k       int;
BEGIN
    IF p_instance IS NULL OR p_metric IS NULL OR p_from IS NULL OR p_to IS NULL OR res IS NULL THEN
        RAISE EXCEPTION 'read_series: instance, metric, from, to and resolution must not be null';
    END IF;
    IF p_to <= p_from OR p_to - p_from > interval '400 days' THEN
        RAISE EXCEPTION 'read_series: the range % .. % must be forward and at most 400 days', p_from, p_to;
    END IF;
    IF res <> 'auto' AND NOT res = ANY (levels) THEN
        RAISE EXCEPTION 'read_series: resolution % is not one of raw, 1m, 5m, 15m, 1h, auto', pg_catalog.quote_literal(p_resolution);
    END IF;
    IF p_labels IS NOT NULL AND jsonb_typeof(p_labels) <> 'object' THEN
        RAISE EXCEPTION 'read_series: labels must be a JSON object, got %', jsonb_typeof(p_labels);
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'read_series: no instance named %', pg_catalog.quote_literal(p_instance);
    END IF;
    IF NOT EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = iid AND s.metric = p_metric) THEN
        RAISE EXCEPTION 'read_series: instance % has no metric %', p_instance, pg_catalog.quote_literal(p_metric)
            USING HINT = 'SELECT DISTINCT metric FROM pganalytics.series lists the metrics';
    END IF;
    IF res = 'auto' THEN
        k := CASE WHEN p_to - p_from <= interval '1 hour' THEN 1
                  WHEN p_to - p_from <= interval '16 hours' THEN 2
                  WHEN p_to - p_from <= interval '3 days' THEN 3
                  WHEN p_to - p_from <= interval '10 days' THEN 4 ELSE 5 END;
        -- step up while the range starts before what this level keeps
        WHILE k < 5 AND p_from < now() - (SELECT s.value::interval FROM pganalytics.store_settings s
                                          WHERE s.name = 'retention.' || levels[k]) LOOP
            k := k + 1;
        END LOOP;
        res := levels[k];
    END IF;
    k := array_position(levels, res);
    width := widths[k];

    IF res = 'raw' THEN
        RETURN QUERY
            SELECT r.series_id, r.labels, r.ts,
                   CASE WHEN r.kind = 'gauge' THEN r.v
                        ELSE (r.v - CASE WHEN r.v >= r.prev THEN r.prev ELSE 0 END)
                             / nullif(extract(epoch FROM r.ts - r.prev_ts), 0) END,
                   r.v, r.v, 1, res
            FROM (SELECT x.*, lag(x.v) OVER w AS prev, lag(x.ts) OVER w AS prev_ts
                  FROM (SELECT s.series_id, s.labels, s.kind, f.ts,
                               pganalytics.frame_value(f.vals, array_position(l.series_ids, s.series_id)) AS v
                        FROM pganalytics.series s
                        JOIN pganalytics.sample_layouts l ON l.instance_id = iid AND s.series_id = ANY (l.series_ids)
                        JOIN pganalytics.sample_frames f ON f.instance_id = iid AND f.layout_id = l.layout_id
                         AND f.ts >= p_from - interval '1 minute' AND f.ts < p_to
                        WHERE s.instance_id = iid AND s.metric = p_metric
                          AND (p_labels IS NULL OR s.labels @> p_labels)) x
                  WINDOW w AS (PARTITION BY x.series_id ORDER BY x.ts)) r
            WHERE r.ts >= p_from AND (r.kind = 'gauge' OR r.prev IS NOT NULL)
            ORDER BY r.series_id, r.ts;
        RETURN;
    END IF;

    -- Buckets before `done` are in the level's table; later ones are built from raw frames.
    SELECT date_bin(width, p.rolled_until, origin) INTO done
    FROM pganalytics.rollup_progress p WHERE p.instance_id = iid;
    done := coalesce(done, '-infinity');
    RETURN QUERY EXECUTE pg_catalog.format($sql$
        WITH picked AS (
            SELECT s.series_id, s.labels, s.kind FROM pganalytics.series s
            WHERE s.instance_id = $1 AND s.metric = $2 AND ($7::jsonb IS NULL OR s.labels @> $7)),
        stored AS (
            SELECT r.series_id, r.bucket, r.n, r.sum, r.min, r.max, r.last
            FROM picked p JOIN pganalytics.%I r ON r.instance_id = $1 AND r.series_id = p.series_id
            WHERE r.bucket >= date_bin($5, $3, $6) - $5 AND r.bucket < least($4, $8)),
        fresh AS (
            SELECT u.series_id, date_bin($5, f.ts, $6) AS bucket, count(*)::int AS n, sum(u.v) AS sum,
                   min(u.v) AS min, max(u.v) AS max, (array_agg(u.v ORDER BY f.ts DESC))[1] AS last
            FROM pganalytics.sample_frames f
            JOIN pganalytics.sample_layouts l ON l.instance_id = f.instance_id AND l.layout_id = f.layout_id
            CROSS JOIN LATERAL unnest(l.series_ids, pganalytics.frame_values(f.vals)) AS u(series_id, v)
            WHERE f.instance_id = $1 AND f.ts >= greatest($8, date_bin($5, $3, $6) - $5) AND f.ts < $4
              AND u.series_id IN (SELECT p.series_id FROM picked p)
              -- finite values only (PostgreSQL's NaN equals itself: no self-comparison finds it)
              AND u.v NOT IN ('NaN', 'infinity', '-infinity')
            GROUP BY 1, 2),
        buckets AS (
            SELECT b.*, lag(b.last) OVER w AS prev_last, lag(b.bucket) OVER w AS prev_bucket
            FROM (SELECT * FROM stored UNION ALL SELECT * FROM fresh) b
            WINDOW w AS (PARTITION BY b.series_id ORDER BY b.bucket))
        SELECT b.series_id, p.labels, b.bucket,
               CASE WHEN p.kind = 'gauge' THEN b.sum / b.n
                    ELSE (b.last - CASE WHEN b.last >= b.prev_last THEN b.prev_last ELSE 0 END)
                         / extract(epoch FROM b.bucket - b.prev_bucket) END,
               b.min, b.max, b.n, $9
        FROM buckets b JOIN picked p USING (series_id)
        WHERE b.bucket >= date_bin($5, $3, $6) AND (p.kind = 'gauge' OR b.prev_bucket IS NOT NULL)
        ORDER BY b.series_id, b.bucket
        $sql$, 'rollups_' || res)
    USING iid, p_metric, p_from, p_to, width, origin, p_labels, done, res;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.read_series(text, text, timestamptz, timestamptz, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.read_series(text, text, timestamptz, timestamptz, text, jsonb) TO pganalytics_admin;
