-- Which of an instance's metrics move together, and which leads (the seed's phase 2.3): the
-- Pearson matrix of p_metrics over the p_window up to now (or options.to), on one time grid,
-- with each pair's best lag and a sentence for the strong pairs (correlation_matrix_values():
-- its columns, the threshold, the detrending and the chance bound are documented there).
--
-- A metric is named as
--   a store metric            'pg_database_blks_read': the sum over its series (counters as per-second
--                             rates, gauges as means), or 'metric{key=value,...}' for the series whose
--                             labels hold those pairs;
--   lock_waits                sessions waiting on a heavyweight lock (the daemon's lock sampling), 0 in
--                             buckets where sampling ran and found none;
--   query_latency             mean execution time per call over all statements (pg_stat_statements
--                             deltas), or 'query_latency{queryid=123}' for one statement;
--   query_calls               statements executed per second (same source, same filter).
-- The grid: options.resolution, 'raw' (the collector's own cadence: buckets of options.step,
-- default the median spacing of the first metric's samples, at least 1 s), '1m', '1h', or 'auto'
-- (default: raw up to 2 hours, 1m up to 2 days, else 1h); each metric's samples are averaged per
-- bucket. Lags are searched to options.max_lag (default 5 minutes) in steps of the grid.
-- Rows: every pair (x before y in p_metrics' order), strongest first. Other options go to
-- correlation_matrix_values() (threshold, detrend, min_pairs, alpha). Errors (SQLSTATE 22023):
-- an unknown instance or metric, fewer than two metrics or more than 200, a window outside
-- 1 minute .. 40 days, an unknown option.
-- depends: analytics/correlation_matrix_values.sql
-- depends: store/read_series.sql
CREATE OR REPLACE FUNCTION pganalytics.correlations(p_instance text, p_metrics text[], p_window interval DEFAULT '1 hour',
                                                    p_options jsonb DEFAULT '{}')
RETURNS TABLE (x text, y text, r float8, lag interval, r_at_lag float8, leader text, prepared text,
               significant boolean, insight text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    own      CONSTANT text[] := ARRAY['to', 'resolution', 'step', 'max_lag'];
    passed   CONSTANT text[] := ARRAY['threshold', 'detrend', 'min_pairs', 'alpha'];
    origin   CONSTANT timestamptz := timestamptz '2001-01-01 00:00:00+00';
    iid      int;
    unknown  text;
    t_to     timestamptz;
    t_from   timestamptz;
    res      text;
    step     interval;
    max_lag  interval;
    name     text;
    base     text;
    want     jsonb;  -- the name's label filter
    grid     timestamptz[];
    cols     float8[] := '{}';  -- two-dimensional: a row per metric, a column per bucket
    col      float8[];
    sampled  tstzrange;
BEGIN
    IF p_instance IS NULL OR p_metrics IS NULL OR p_window IS NULL OR p_options IS NULL
       OR jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'correlations: instance, metrics, window and options (a JSON object) are required'
            USING ERRCODE = '22023';
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'correlations: no instance named %', pg_catalog.quote_literal(p_instance) USING ERRCODE = '22023';
    END IF;
    IF cardinality(p_metrics) NOT BETWEEN 2 AND 200 OR array_position(p_metrics, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'correlations: name 2 to 200 metrics, without NULLs' USING ERRCODE = '22023';
    END IF;
    IF p_window NOT BETWEEN interval '1 minute' AND interval '40 days' THEN
        RAISE EXCEPTION 'correlations: the window must be 1 minute to 40 days, not %', p_window USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown FROM jsonb_object_keys(p_options) AS k
    WHERE NOT k = ANY (own || passed);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'correlations: unknown option(s) %; known: %', unknown, array_to_string(own || passed, ', ')
            USING ERRCODE = '22023';
    END IF;
    BEGIN
        t_to := coalesce((p_options ->> 'to')::timestamptz, now());
        step := (p_options ->> 'step')::interval;
        max_lag := coalesce((p_options ->> 'max_lag')::interval, interval '5 minutes');
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'correlations: option to must be a timestamp, step and max_lag intervals' USING ERRCODE = '22023';
    END;
    t_from := t_to - p_window;
    res := coalesce(p_options ->> 'resolution', 'auto');
    IF res = 'auto' THEN
        res := CASE WHEN p_window <= interval '2 hours' THEN 'raw' WHEN p_window <= interval '2 days' THEN '1m' ELSE '1h' END;
    END IF;
    IF NOT res = ANY (ARRAY['raw', '1m', '1h']) THEN
        RAISE EXCEPTION 'correlations: option resolution must be auto, raw, 1m or 1h, not %', res USING ERRCODE = '22023';
    END IF;

    -- Each name: its base metric and label filter, checked before anything is read.
    FOREACH name IN ARRAY p_metrics LOOP
        base := substring(name FROM '^([a-z][a-z0-9_]*)(\{[^{}]*\})?$');
        IF base IS NULL THEN
            RAISE EXCEPTION 'correlations: % is not a metric name (metric or metric{key=value,...})',
                pg_catalog.quote_literal(name) USING ERRCODE = '22023';
        END IF;
        IF base NOT IN ('lock_waits', 'query_latency', 'query_calls')
           AND NOT EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = iid AND s.metric = base) THEN
            RAISE EXCEPTION 'correlations: instance % has no metric %', p_instance, pg_catalog.quote_literal(base)
                USING ERRCODE = '22023',
                      HINT = 'store metrics: SELECT DISTINCT metric FROM pganalytics.series; also lock_waits, query_latency, query_calls';
        END IF;
    END LOOP;

    -- The grid. Raw: buckets of the step (default: the first metric's median sample spacing).
    IF res = 'raw' THEN
        IF step IS NULL THEN
            base := substring(p_metrics[1] FROM '^([a-z][a-z0-9_]*)');
            SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d.gap) INTO step
            FROM (SELECT t.ts - lag(t.ts) OVER (ORDER BY t.ts) AS gap
                  FROM (SELECT DISTINCT f.ts FROM pganalytics.sample_frames f
                        WHERE f.instance_id = iid AND f.ts >= t_from AND f.ts < t_to) t) d
            WHERE d.gap IS NOT NULL;
            step := greatest(date_trunc('second', coalesce(step, interval '10 seconds') + interval '0.5 second'),
                             interval '1 second');
        END IF;
    ELSE
        step := CASE res WHEN '1m' THEN interval '1 minute' ELSE interval '1 hour' END;
    END IF;
    IF step < interval '1 second' OR extract(epoch FROM p_window) / extract(epoch FROM step) > 100000 THEN
        RAISE EXCEPTION 'correlations: a step of % over % is too fine (at most 100,000 buckets, steps of at least 1 s)',
            step, p_window USING ERRCODE = '22023';
    END IF;
    grid := ARRAY(SELECT g FROM generate_series(date_bin(step, t_from, origin), t_to - interval '1 microsecond', step) g);
    -- where the daemon's lock sampling ran: a bucket without a waiting session counts 0 there
    IF 'lock_waits' = ANY (p_metrics) THEN
        SELECT tstzrange(min(w.collected_at) - step, max(w.collected_at) + step) INTO sampled
        FROM pganalytics.wait_samples w WHERE w.instance_id = iid AND w.collected_at >= t_from AND w.collected_at < t_to;
    END IF;

    FOREACH name IN ARRAY p_metrics LOOP
        base := substring(name FROM '^([a-z][a-z0-9_]*)');
        want := (SELECT coalesce(jsonb_object_agg(split_part(kv, '=', 1), split_part(kv, '=', 2)), '{}')
                   FROM unnest(string_to_array(substring(name FROM '\{([^{}]*)\}'), ',')) AS kv
                   WHERE kv <> '');
        IF base = 'lock_waits' THEN
            SELECT array_agg(CASE WHEN w.n IS NOT NULL THEN w.n::float8 WHEN sampled @> g.b THEN 0 END ORDER BY g.b) INTO col
            FROM unnest(grid) AS g(b)
            LEFT JOIN (SELECT date_bin(step, l.collected_at, origin) AS b, count(*)::float8 / count(DISTINCT l.collected_at) AS n
                       FROM pganalytics.lock_waits l
                       WHERE l.instance_id = iid AND l.kind = 'lock_wait' AND l.collected_at >= t_from AND l.collected_at < t_to
                       GROUP BY 1) w ON w.b = g.b;
        ELSIF base IN ('query_latency', 'query_calls') THEN
            IF want - 'queryid' <> '{}' OR (want ? 'queryid' AND want ->> 'queryid' !~ '^-?[0-9]{1,19}$') THEN
                RAISE EXCEPTION 'correlations: % takes only a queryid filter, e.g. %{queryid=123}', base, base
                    USING ERRCODE = '22023';
            END IF;
            SELECT array_agg(CASE WHEN base = 'query_latency' THEN q.total / nullif(q.calls, 0)
                                  ELSE q.calls / extract(epoch FROM step) END ORDER BY g.b) INTO col
            FROM unnest(grid) AS g(b)
            LEFT JOIN (SELECT date_bin(step, d.collected_at, origin) AS b, sum(d.total_exec_time) AS total,
                              sum(d.calls)::float8 AS calls
                       FROM pganalytics.query_stat_deltas d
                       WHERE d.instance_id = iid AND d.collected_at >= t_from AND d.collected_at < t_to
                         AND (NOT want ? 'queryid' OR d.queryid = (want ->> 'queryid')::bigint)
                       GROUP BY 1) q ON q.b = g.b;
        ELSE
            IF NOT EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = iid AND s.metric = base
                           AND s.labels @> want) THEN
                RAISE EXCEPTION 'correlations: no series of % on instance % has the labels %', base, p_instance, want
                    USING ERRCODE = '22023';
            END IF;
            -- the sum over the metric's series of each one's bucket mean
            SELECT array_agg(v.v ORDER BY g.b) INTO col
            FROM unnest(grid) AS g(b)
            LEFT JOIN (SELECT s.b, sum(s.v) AS v
                       FROM (SELECT date_bin(step, r.ts, origin) AS b, r.series_id, avg(r.value) AS v
                             FROM pganalytics.read_series(p_instance, base, t_from, t_to, res, want) r
                             WHERE r.value NOT IN ('NaN', 'infinity', '-infinity')
                             GROUP BY 1, 2) s
                       GROUP BY s.b) v ON v.b = g.b;
        END IF;
        cols := cols || ARRAY[col];  -- a row more of the metrics x grid array
    END LOOP;

    RETURN QUERY
        SELECT m.x, m.y, m.r, m.lag, m.r_at_lag, m.leader, m.prepared, m.significant, m.insight
        FROM pganalytics.correlation_matrix_values(
                 p_metrics, grid, cols,
                 (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM jsonb_each(p_options) e
                  WHERE e.key = ANY (passed))
                 || jsonb_build_object('step', extract(epoch FROM step)::float8,
                                       'max_lag', extract(epoch FROM max_lag)::float8)) m
        ORDER BY greatest(abs(m.r), abs(m.r_at_lag)) DESC NULLS LAST, m.x, m.y;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.correlations(text, text[], interval, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.correlations(text, text[], interval, jsonb) TO pganalytics_admin;
