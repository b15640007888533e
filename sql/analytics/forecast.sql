-- The forecast of one stored metric of an instance, p_days ahead (the seed's
-- GET /ai/predict/{metric}?days=7): every series of the metric (or those whose labels contain
-- options.labels), read from the store's rollups (read_series(): counters as per-second rates,
-- gauges as bucket means) over options.history (default 8 weeks) up to now, at
-- options.resolution (1h, default; 15m or 5m for a short look ahead), and forecast by
-- forecast_series() with the remaining options (level, season, model, damped, max_gap).
-- A series with fewer than 10 points is left out; none with enough is an error, as are a
-- p_days outside 1..90 and an unknown option.
-- depends: analytics/forecast_series.sql
-- depends: store/read_series.sql
CREATE OR REPLACE FUNCTION pganalytics.forecast(p_instance text, p_metric text, p_days int DEFAULT 7,
                                                p_options jsonb DEFAULT '{}')
RETURNS TABLE (series_id int, labels jsonb, ts timestamptz, yhat float8, lo float8, hi float8)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    own      CONSTANT text[] := ARRAY['history', 'labels', 'resolution'];
    passed   CONSTANT text[] := ARRAY['level', 'season', 'model', 'damped', 'max_gap'];
    history  interval;
    res      text;
    steps    int;
    unknown  text;
    s        record;
    most     int := 0;
    done     int := 0;
BEGIN
    IF p_instance IS NULL OR p_metric IS NULL OR p_days IS NULL OR p_options IS NULL THEN
        RAISE EXCEPTION 'forecast: instance, metric, days and options must not be null' USING ERRCODE = '22023';
    END IF;
    IF p_days NOT BETWEEN 1 AND 90 THEN
        RAISE EXCEPTION 'forecast: days must be 1 to 90, not %', p_days USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'forecast: options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
    FROM jsonb_object_keys(p_options) AS k WHERE NOT k = ANY (own || passed);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'forecast: unknown option(s) %; known: %', unknown,
            array_to_string(own || passed, ', ') USING ERRCODE = '22023';
    END IF;
    BEGIN
        history := coalesce(p_options ->> 'history', '8 weeks')::interval;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'forecast: option history must be an interval, not %', p_options ->> 'history'
            USING ERRCODE = '22023';
    END;
    IF history < interval '1 hour' OR history > interval '400 days' THEN
        RAISE EXCEPTION 'forecast: option history must be 1 hour to 400 days, not %', history USING ERRCODE = '22023';
    END IF;
    res := coalesce(p_options ->> 'resolution', '1h');
    steps := p_days * CASE res WHEN '1h' THEN 24 WHEN '15m' THEN 96 WHEN '5m' THEN 288 END;
    IF steps IS NULL THEN
        RAISE EXCEPTION 'forecast: option resolution must be 1h, 15m or 5m, not %', res USING ERRCODE = '22023';
    END IF;
    IF p_options ? 'labels' AND jsonb_typeof(p_options -> 'labels') <> 'object' THEN
        RAISE EXCEPTION 'forecast: option labels must be a JSON object' USING ERRCODE = '22023';
    END IF;

    FOR s IN
        SELECT r.series_id, r.labels, array_agg(r.ts ORDER BY r.ts) AS ts, array_agg(r.value ORDER BY r.ts) AS v
        FROM pganalytics.read_series(p_instance, p_metric, now() - history, now(), res, p_options -> 'labels') r
        WHERE r.value IS NOT NULL AND r.value NOT IN ('NaN', 'infinity', '-infinity')
        GROUP BY r.series_id, r.labels
        ORDER BY r.series_id
    LOOP
        most := greatest(most, cardinality(s.ts));
        CONTINUE WHEN cardinality(s.ts) < 10;
        done := done + 1;
        RETURN QUERY
            SELECT s.series_id, s.labels, f.ts, f.yhat, f.lo, f.hi
            FROM pganalytics.forecast_series(s.ts, s.v, steps,
                     (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM jsonb_each(p_options) e
                      WHERE e.key = ANY (passed))) f;
    END LOOP;
    IF done = 0 THEN
        RAISE EXCEPTION 'forecast: no series of metric % on instance % has the 10 points at % a forecast needs in the last % (the most: %)',
            p_metric, p_instance, res, history, most USING ERRCODE = '22023';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.forecast(text, text, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.forecast(text, text, int, jsonb) TO pganalytics_admin;
