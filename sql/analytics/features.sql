-- Feature vectors of one metric of one instance over the lookback ending now: one row per
-- series of the metric (or those whose labels contain p_labels, as read_series()), with
--   resolution   what read_series(..., 'auto') read the lookback at (raw up to 1 h, 1m up to
--                16 h, ...; counters as per-second rates); NULL when no series had a point
--   points, mean, stddev, p95, slope (per second), trend ('up' | 'down' | 'flat'),
--   volatility (coefficient of variation: stddev / |mean|), over the lookback's points;
--   moving_avg_5m, moving_stddev_5m, rate_of_change (least-squares slope, per second) over the
--                last 5 minutes at raw resolution, whatever the lookback's (NULL when the series
--                has no sample in them); definitions in analytics/feature_vector.sql
--   computed_at  when the vector was computed: its lookback ends there
--   cached       true when it came from pganalytics.feature_cache
-- A series with no point in the lookback still gets its row (points 0, features NULL).
--
-- Cache: one row per (series, lookback), reused while younger than the store setting
-- features.ttl (5 minutes) and while the series got no new sample. "New sample" is a frame
-- newer than the newest one the vector saw, of any layout holding the series: per series, as
-- the series' own data (a frame of its layout carries a value of every series of it), so other
-- sources' frames do not invalidate it. The instance's instance_seen.last_seen_at would have
-- been cheaper but is both too coarse (every source's frame, every 10 s, would invalidate
-- every series of the instance: no hit for a live instance) and too late (it moves in steps of
-- 10 s, so a sample inside a step would not invalidate). The check is one backward probe of
-- the frames' (instance_id, ts, layout_id) index per distinct set of layouts (a metric's
-- series share one or a few), stopping at the first frame of any of them. A late frame
-- (older than the newest seen, e.g. a spooled batch replayed) does not invalidate: the TTL
-- bounds how long it is missed. Misses are recomputed with one read_series() call (two when
-- the lookback is read coarser than raw) and written back; expired rows of other lookbacks of
-- those series are deleted on the way, so the cache stays about series x lookbacks in use.
--
-- VOLATILE (it writes the cache) and SECURITY DEFINER: admins call it but may not write the
-- cache themselves (a planted row would be served as a computed one) nor read the frames
-- directly. It reads only the store's own tables, all named with their schema.
-- depends: analytics/feature_vector.sql
-- depends: store/read_series.sql
CREATE OR REPLACE FUNCTION pganalytics.features(
    p_instance text,
    p_metric   text,
    p_lookback interval DEFAULT interval '1 hour',
    p_labels   jsonb    DEFAULT NULL)
RETURNS TABLE (series_id int, labels jsonb, resolution text, points int, mean float8, stddev float8,
               p95 float8, moving_avg_5m float8, moving_stddev_5m float8, rate_of_change float8,
               trend text, slope float8, volatility float8, computed_at timestamptz, cached boolean)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_window CONSTANT interval := interval '5 minutes';  -- of the moving features
    v_to     CONSTANT timestamptz := now();
    v_from   timestamptz;
    iid      int;
    ttl      interval;
    ids      int[];
    marks    timestamptz[];
    misses   int[];
    res      text;
    m_ids    int[];  -- the points read, flat: series, time, value
    m_ts     timestamptz[];
    m_vals   float8[];
    r_ids    int[];  -- the trailing 5 minutes' points, when read apart
    r_ts     timestamptz[];
    r_vals   float8[];
BEGIN
    IF p_instance IS NULL OR p_metric IS NULL OR p_lookback IS NULL THEN
        RAISE EXCEPTION 'features: instance, metric and lookback must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_lookback <= interval '0' OR p_lookback > interval '400 days' THEN
        RAISE EXCEPTION 'features: lookback must be more than 0 and at most 400 days (the longest retention), got %', p_lookback
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_labels IS NOT NULL AND jsonb_typeof(p_labels) <> 'object' THEN
        RAISE EXCEPTION 'features: labels must be a JSON object, got %', jsonb_typeof(p_labels)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'features: no instance named %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = iid AND s.metric = p_metric) THEN
        RAISE EXCEPTION 'features: instance % has no metric %', p_instance, pg_catalog.quote_literal(p_metric)
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT DISTINCT metric FROM pganalytics.series lists the metrics';
    END IF;
    ttl := coalesce((SELECT s.value::interval FROM pganalytics.store_settings s WHERE s.name = 'features.ttl'),
                    interval '5 minutes');
    v_from := v_to - p_lookback;

    -- Each picked series and the time of the newest frame of a layout holding it (read before
    -- the data: a frame landing in between makes the next call recompute, never miss it).
    WITH picked AS (
        SELECT s.series_id FROM pganalytics.series s
        WHERE s.instance_id = iid AND s.metric = p_metric AND (p_labels IS NULL OR s.labels @> p_labels)),
    sets AS (
        SELECT p.series_id, array_agg(l.layout_id ORDER BY l.layout_id) AS layouts
        FROM picked p
        LEFT JOIN pganalytics.sample_layouts l ON l.instance_id = iid AND p.series_id = ANY (l.series_ids)
        GROUP BY p.series_id),
    newest AS (
        -- array_position() is no index condition on purpose: the scan stays ordered by ts and
        -- stops at the first frame of any of the set's layouts (an index condition on a list
        -- would read every match of the window, and walk it to the end for a dead layout).
        SELECT d.layouts,
               (SELECT f.ts FROM pganalytics.sample_frames f
                WHERE f.instance_id = iid AND f.ts >= least(v_from, v_to - c_window)
                  AND array_position(d.layouts, f.layout_id) IS NOT NULL
                ORDER BY f.ts DESC LIMIT 1) AS ts
        FROM (SELECT DISTINCT s.layouts FROM sets s) d)
    SELECT array_agg(s.series_id ORDER BY s.series_id), array_agg(n.ts ORDER BY s.series_id)
    INTO ids, marks
    FROM sets s JOIN newest n ON n.layouts IS NOT DISTINCT FROM s.layouts;
    IF ids IS NULL THEN
        RETURN;  -- no series of the metric has these labels
    END IF;

    SELECT array_agg(u.series_id ORDER BY u.series_id) INTO misses
    FROM unnest(ids, marks) AS u(series_id, mark)
    WHERE NOT EXISTS (
        SELECT FROM pganalytics.feature_cache c
        WHERE c.instance_id = iid AND c.kind = 'series' AND c.subject_id = u.series_id
          AND c.lookback = p_lookback AND c.computed_at > v_to - ttl
          AND c.data_until IS NOT DISTINCT FROM u.mark);

    IF misses IS NOT NULL THEN
        SELECT array_agg(r.series_id ORDER BY r.series_id, r.ts), array_agg(r.ts ORDER BY r.series_id, r.ts),
               array_agg(r.value ORDER BY r.series_id, r.ts), min(r.resolution)
        INTO m_ids, m_ts, m_vals, res
        FROM pganalytics.read_series(p_instance, p_metric, v_from, v_to, 'auto', p_labels) r
        WHERE r.series_id = ANY (misses);
        -- The moving features are of raw points: taken from the read when it is raw and
        -- covers the 5 minutes, else read apart (5 minutes of the instance's frames).
        IF p_lookback < c_window OR res IS DISTINCT FROM 'raw' THEN
            SELECT array_agg(r.series_id ORDER BY r.series_id, r.ts), array_agg(r.ts ORDER BY r.series_id, r.ts),
                   array_agg(r.value ORDER BY r.series_id, r.ts)
            INTO r_ids, r_ts, r_vals
            FROM pganalytics.read_series(p_instance, p_metric, v_to - c_window, v_to, 'raw', p_labels) r
            WHERE r.series_id = ANY (misses);
        ELSE
            SELECT array_agg(u.sid ORDER BY u.k), array_agg(u.ts ORDER BY u.k), array_agg(u.v ORDER BY u.k)
            INTO r_ids, r_ts, r_vals
            FROM unnest(m_ids, m_ts, m_vals) WITH ORDINALITY AS u(sid, ts, v, k)
            WHERE u.ts >= v_to - c_window;
        END IF;

        -- Expired rows of other lookbacks of these series: nothing would ever read them.
        DELETE FROM pganalytics.feature_cache c
        WHERE c.instance_id = iid AND c.kind = 'series' AND c.subject_id = ANY (misses::bigint[])
          AND c.lookback <> p_lookback AND c.computed_at <= v_to - ttl;

        -- computed_at from EXCLUDED, not now(): Citus refuses now() in ON CONFLICT DO UPDATE.
        WITH main AS (
            SELECT u.sid, array_agg(u.ts ORDER BY u.ts) AS ts, array_agg(u.v ORDER BY u.ts) AS v
            FROM unnest(m_ids, m_ts, m_vals) AS u(sid, ts, v) GROUP BY u.sid),
        tail AS (
            SELECT u.sid, array_agg(u.ts ORDER BY u.ts) AS ts, array_agg(u.v ORDER BY u.ts) AS v
            FROM unnest(r_ids, r_ts, r_vals) AS u(sid, ts, v) GROUP BY u.sid)
        INSERT INTO pganalytics.feature_cache AS c
            (instance_id, kind, subject_id, lookback, computed_at, data_until, resolution, points, mean,
             stddev, p95, moving_avg_5m, moving_stddev_5m, rate_of_change, trend, slope, volatility)
        SELECT iid, 'series', u.series_id, p_lookback, v_to, u.mark, res, f.points, f.mean,
               f.stddev, f.p95, f.moving_avg_5m, f.moving_stddev_5m, f.rate_of_change, f.trend, f.slope, f.volatility
        FROM unnest(ids, marks) AS u(series_id, mark)
        LEFT JOIN main m ON m.sid = u.series_id
        LEFT JOIN tail t ON t.sid = u.series_id
        CROSS JOIN LATERAL pganalytics.feature_vector(coalesce(m.ts, '{}'), coalesce(m.v, '{}'),
                                                      coalesce(t.ts, '{}'), coalesce(t.v, '{}')) f
        WHERE u.series_id = ANY (misses)
        ON CONFLICT (instance_id, kind, subject_id, lookback) DO UPDATE SET
            computed_at = EXCLUDED.computed_at, data_until = EXCLUDED.data_until,
            resolution = EXCLUDED.resolution, points = EXCLUDED.points, mean = EXCLUDED.mean,
            stddev = EXCLUDED.stddev, p95 = EXCLUDED.p95, moving_avg_5m = EXCLUDED.moving_avg_5m,
            moving_stddev_5m = EXCLUDED.moving_stddev_5m, rate_of_change = EXCLUDED.rate_of_change,
            trend = EXCLUDED.trend, slope = EXCLUDED.slope, volatility = EXCLUDED.volatility;
    END IF;

    RETURN QUERY
        SELECT s.series_id, s.labels, c.resolution, c.points, c.mean, c.stddev, c.p95, c.moving_avg_5m,
               c.moving_stddev_5m, c.rate_of_change, c.trend, c.slope, c.volatility, c.computed_at,
               NOT coalesce(s.series_id = ANY (misses), false)
        FROM pganalytics.series s
        JOIN pganalytics.feature_cache c
          ON c.instance_id = iid AND c.kind = 'series' AND c.subject_id = s.series_id AND c.lookback = p_lookback
        WHERE s.instance_id = iid AND s.series_id = ANY (ids)
        ORDER BY s.series_id;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.features(text, text, interval, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.features(text, text, interval, jsonb) TO pganalytics_admin;
