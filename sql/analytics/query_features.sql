-- The feature vector of one query (pg_stat_statements queryid) of one instance over the
-- lookback ending now, with the columns and definitions of features() (see
-- analytics/feature_vector.sql). The series is the query's mean execution time per call, in
-- ms, one point per snapshot interval in which it ran: sum(total_exec_time) / sum(calls) of
-- that interval's deltas (query_stat_deltas), pooled over databases, users and nesting levels
-- as api_queries() pools them; an interval counts when it ends in (now - lookback, now], its
-- point at its end (collected_at). The features weigh intervals alike (mean is the mean of
-- the intervals' means; api_queries() gives the call-weighted mean). The moving features are
-- the intervals ending in the last 5 minutes. Intervals in which the query did not run have
-- no delta and no point (not a 0 ms point).
--
-- Cached like features(), under kind 'query': reused while younger than features.ttl and
-- while the query's newest delta is the one the vector saw. That is exact and cheap: the
-- deltas' (instance_id, queryid, collected_at) index gives the newest in one probe per
-- partition, and a query's deltas only ever arrive in collection order (ingest_query_stats()
-- makes none of an older, late snapshot). Snapshots in which the query did not run add no
-- delta, so they do not invalidate it; another query's deltas do not either.
-- VOLATILE and SECURITY DEFINER for the reasons features() gives.
-- depends: analytics/feature_vector.sql
CREATE OR REPLACE FUNCTION pganalytics.query_features(
    p_instance text,
    p_queryid  bigint,
    p_lookback interval DEFAULT interval '1 hour')
RETURNS TABLE (queryid bigint, points int, mean float8, stddev float8, p95 float8, moving_avg_5m float8,
               moving_stddev_5m float8, rate_of_change float8, trend text, slope float8, volatility float8,
               computed_at timestamptz, cached boolean)
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
    mark     timestamptz;
    hit      boolean;
BEGIN
    IF p_instance IS NULL OR p_queryid IS NULL OR p_lookback IS NULL THEN
        RAISE EXCEPTION 'query_features: instance, queryid and lookback must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_lookback <= interval '0' OR p_lookback > interval '400 days' THEN
        RAISE EXCEPTION 'query_features: lookback must be more than 0 and at most 400 days, got %', p_lookback
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    IF iid IS NULL THEN
        RAISE EXCEPTION 'query_features: no instance named %', pg_catalog.quote_literal(p_instance)
            USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT FROM pganalytics.query_texts t WHERE t.instance_id = iid AND t.queryid = p_queryid)
       AND NOT EXISTS (SELECT FROM pganalytics.query_stats q WHERE q.instance_id = iid AND q.queryid = p_queryid) THEN
        RAISE EXCEPTION 'query_features: instance % has no query with queryid %', p_instance, p_queryid
            USING ERRCODE = 'no_data_found',
                  HINT = 'pganalytics.api_queries() lists the instance''s queries';
    END IF;
    ttl := coalesce((SELECT s.value::interval FROM pganalytics.store_settings s WHERE s.name = 'features.ttl'),
                    interval '5 minutes');
    v_from := v_to - p_lookback;

    -- Read before the data: a delta landing in between makes the next call recompute.
    SELECT max(d.collected_at) INTO mark FROM pganalytics.query_stat_deltas d
    WHERE d.instance_id = iid AND d.queryid = p_queryid AND d.collected_at > least(v_from, v_to - c_window);
    SELECT true INTO hit FROM pganalytics.feature_cache c
    WHERE c.instance_id = iid AND c.kind = 'query' AND c.subject_id = p_queryid AND c.lookback = p_lookback
      AND c.computed_at > v_to - ttl AND c.data_until IS NOT DISTINCT FROM mark;

    IF hit IS NULL THEN
        DELETE FROM pganalytics.feature_cache c
        WHERE c.instance_id = iid AND c.kind = 'query' AND c.subject_id = p_queryid
          AND c.lookback <> p_lookback AND c.computed_at <= v_to - ttl;
        -- computed_at from EXCLUDED, not now(): Citus refuses now() in ON CONFLICT DO UPDATE.
        WITH intervals AS (
            SELECT d.collected_at AS ts, sum(d.total_exec_time) / sum(d.calls)::float8 AS v
            FROM pganalytics.query_stat_deltas d
            WHERE d.instance_id = iid AND d.queryid = p_queryid
              AND d.collected_at > least(v_from, v_to - c_window) AND d.collected_at <= v_to
            GROUP BY d.collected_at),
        arrays AS (
            SELECT array_agg(i.ts ORDER BY i.ts) FILTER (WHERE i.ts > v_from) AS ts,
                   array_agg(i.v ORDER BY i.ts) FILTER (WHERE i.ts > v_from) AS v,
                   array_agg(i.ts ORDER BY i.ts) FILTER (WHERE i.ts > v_to - c_window) AS recent_ts,
                   array_agg(i.v ORDER BY i.ts) FILTER (WHERE i.ts > v_to - c_window) AS recent_v
            FROM intervals i)
        INSERT INTO pganalytics.feature_cache AS c
            (instance_id, kind, subject_id, lookback, computed_at, data_until, resolution, points, mean,
             stddev, p95, moving_avg_5m, moving_stddev_5m, rate_of_change, trend, slope, volatility)
        SELECT iid, 'query', p_queryid, p_lookback, v_to, mark, NULL, f.points, f.mean,
               f.stddev, f.p95, f.moving_avg_5m, f.moving_stddev_5m, f.rate_of_change, f.trend, f.slope, f.volatility
        FROM arrays a
        CROSS JOIN LATERAL pganalytics.feature_vector(coalesce(a.ts, '{}'), coalesce(a.v, '{}'),
                                                      coalesce(a.recent_ts, '{}'), coalesce(a.recent_v, '{}')) f
        ON CONFLICT (instance_id, kind, subject_id, lookback) DO UPDATE SET
            computed_at = EXCLUDED.computed_at, data_until = EXCLUDED.data_until,
            resolution = EXCLUDED.resolution, points = EXCLUDED.points, mean = EXCLUDED.mean,
            stddev = EXCLUDED.stddev, p95 = EXCLUDED.p95, moving_avg_5m = EXCLUDED.moving_avg_5m,
            moving_stddev_5m = EXCLUDED.moving_stddev_5m, rate_of_change = EXCLUDED.rate_of_change,
            trend = EXCLUDED.trend, slope = EXCLUDED.slope, volatility = EXCLUDED.volatility;
    END IF;

    RETURN QUERY
        SELECT c.subject_id, c.points, c.mean, c.stddev, c.p95, c.moving_avg_5m, c.moving_stddev_5m,
               c.rate_of_change, c.trend, c.slope, c.volatility, c.computed_at, coalesce(hit, false)
        FROM pganalytics.feature_cache c
        WHERE c.instance_id = iid AND c.kind = 'query' AND c.subject_id = p_queryid AND c.lookback = p_lookback;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.query_features(text, bigint, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.query_features(text, bigint, interval) TO pganalytics_admin;
