-- Ranked actions for one instance (NULL: every instance) over the last p_window, each with
-- the evidence it rests on and what it should give (the seed's GET /ai/recommendations):
--   create_index       index_advice rows (newest per statement and index), hypopg-checked
--                      first; gain = the statement's share of execution time x the cost cut
--   drop_unused_index  indexes whose idx_scan counter did not move over the window although
--                      their statistics span it, not unique (a constraint is not "unused")
--   drop_duplicate_index  an index whose key columns are the same as, or the leading part of,
--                      another valid index's on the same table with the same method, neither
--                      partial, the shorter one not unique (the longer one serves its scans)
--   end_session        sessions idle in a transaction at the newest collection for over 5
--                      minutes (they hold locks and vacuum's horizon)
--   setting            work_mem when temporary files are written at over 1 MB/s on average
--   rewrite_query      the statements with at least 10 % of the execution time whose mean
--                      is over 100 ms a call
-- score orders the actions by expected benefit (a share of the instance's time, or of its
-- disk or sessions, in [0, 1]); rank is 1 for the best of each instance.
-- depends: store/read_series.sql
CREATE OR REPLACE FUNCTION pganalytics.recommendations(p_instance text DEFAULT NULL,
                                                       p_window   interval DEFAULT '1 day')
RETURNS TABLE (rank int, instance text, kind text, action text, statement text, evidence jsonb,
               expected_effect text, score float8)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER  -- read-only; lets admins call it without table privileges
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c_idle_s      CONSTANT float8 := 300;       -- idle in transaction this long: end it
    c_temp_rate   CONSTANT float8 := 1048576;   -- temp bytes/s worth a work_mem change
    c_share       CONSTANT float8 := 0.10;      -- a statement's share of time worth rewriting
    c_slow_ms     CONSTANT float8 := 100;       -- ... when its mean is this slow
    inst          record;
    v_from        timestamptz := now() - p_window;
    total_ms      float8;
    v_temp        float8;
    recs          jsonb := '[]';  -- [instance, kind, action, statement, evidence, effect, score] each
BEGIN
    IF p_window IS NULL OR p_window <= interval '0' OR p_window > interval '90 days' THEN
        RAISE EXCEPTION 'recommendations: window must be a positive interval up to 90 days, got %', p_window;
    END IF;
    IF p_instance IS NOT NULL AND NOT EXISTS (SELECT FROM pganalytics.instances i WHERE i.name = p_instance) THEN
        RAISE EXCEPTION 'recommendations: unknown instance %', pg_catalog.quote_literal(p_instance);
    END IF;
    FOR inst IN SELECT i.instance_id, i.name FROM pganalytics.instances i
                WHERE p_instance IS NULL OR i.name = p_instance ORDER BY i.name LOOP
        SELECT sum(d.total_exec_time) INTO total_ms FROM pganalytics.query_stat_deltas d
        WHERE d.instance_id = inst.instance_id AND d.toplevel AND d.collected_at > v_from;

        -- create_index: the newest advice per statement and index
        recs := recs || coalesce((SELECT jsonb_agg(jsonb_build_array(inst.name, 'create_index',
               'add an index on ' || a.relname || ' (' || array_to_string(a.columns, ', ') || ') for query ' || a.queryid,
               a.create_statement,
               jsonb_build_object('queryid', a.queryid, 'cost_before', a.cost_before, 'cost_after', a.cost_after,
                                  'verified_with', a.verified_with, 'time_share', q.share, 'at', a.collected_at),
               CASE WHEN a.cost_after IS NOT NULL
                    THEN 'the planner''s cost of the query falls ' || round((100 * (1 - a.cost_after / nullif(a.cost_before, 0)))::numeric)
                         || ' %; it takes ' || round((100 * coalesce(q.share, 0))::numeric, 1) || ' % of execution time'
                    ELSE 'not checked with hypopg (not installed on the target)' END,
               coalesce(q.share, 0) * CASE WHEN a.cost_after IS NOT NULL
                                           THEN greatest(1 - a.cost_after / nullif(a.cost_before, 0), 0) ELSE 0.3 END))
        FROM (SELECT DISTINCT ON (x.queryid, x.create_statement) x.*
              FROM pganalytics.index_advice x
              WHERE x.instance_id = inst.instance_id AND x.collected_at > v_from
              ORDER BY x.queryid, x.create_statement, x.collected_at DESC) a
        LEFT JOIN (SELECT d.queryid, sum(d.total_exec_time) / nullif(total_ms, 0) AS share
                   FROM pganalytics.query_stat_deltas d
                   WHERE d.instance_id = inst.instance_id AND d.toplevel AND d.collected_at > v_from
                   GROUP BY 1) q ON q.queryid = a.queryid
        WHERE a.cost_after IS NULL OR a.cost_after < a.cost_before), '[]');

        -- drop_unused_index: no scan over the window, statistics spanning it, not unique
        IF EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = inst.instance_id AND s.metric = 'pg_index_idx_scan') THEN
            recs := recs || coalesce((SELECT jsonb_agg(jsonb_build_array(inst.name, 'drop_unused_index',
                   'drop the unused index ' || (u.labels ->> 'indexrelname') || ' on ' || (u.labels ->> 'relname'),
                   'DROP INDEX CONCURRENTLY ' || quote_ident(u.labels ->> 'schemaname') || '.' || quote_ident(u.labels ->> 'indexrelname') || ';',
                   jsonb_build_object('scans_per_s', u.rate, 'size_bytes', z.size, 'since', u.first_ts),
                   'frees ' || pg_size_pretty(coalesce(z.size, 0)::bigint) || ' and the work every write does to keep it',
                   0.05 * least(coalesce(z.size, 0) / 1e9, 1.0)))
            FROM (SELECT r.labels, max(r.value) AS rate, min(r.ts) AS first_ts
                  FROM pganalytics.read_series(inst.name, 'pg_index_idx_scan', v_from, now(), 'auto') r
                  GROUP BY r.labels) u
            LEFT JOIN (SELECT r.labels, max(r.value) AS size
                       FROM pganalytics.read_series(inst.name, 'pg_index_size_bytes', v_from, now(), 'auto') r
                       GROUP BY r.labels) z ON z.labels = u.labels
            LEFT JOIN (SELECT r.labels, max(r.value) AS uniq
                       FROM pganalytics.read_series(inst.name, 'pg_index_is_unique', v_from, now(), 'auto') r
                       GROUP BY r.labels) q ON q.labels = u.labels
            WHERE u.rate = 0 AND coalesce(q.uniq, 0) = 0 AND u.first_ts <= v_from + p_window / 10), '[]');
        END IF;

        -- drop_duplicate_index: the index definitions as they are now
        recs := recs || coalesce((SELECT jsonb_agg(jsonb_build_array(inst.name, 'drop_duplicate_index',
               'drop ' || d.indexrelname || ' on ' || d.relname || ': ' || k.indexrelname
                   || CASE WHEN d.columns = k.columns THEN ' has the same key columns' ELSE ' begins with its columns' END,
               'DROP INDEX CONCURRENTLY ' || quote_ident(d.schemaname) || '.' || quote_ident(d.indexrelname) || ';',
               jsonb_build_object('datname', d.datname, 'index', d.indexdef, 'kept', k.indexdef,
                                  'columns', d.columns, 'kept_columns', k.columns),
               'the same reads through ' || k.indexrelname || ', and one index less for every write to keep',
               0.04))
        FROM pganalytics.index_definitions d
        JOIN LATERAL (SELECT x.* FROM pganalytics.index_definitions x
                      WHERE x.instance_id = d.instance_id AND x.datname = d.datname AND x.schemaname = d.schemaname
                        AND x.relname = d.relname AND x.indexrelname <> d.indexrelname AND x.valid_to IS NULL
                        AND x.is_valid AND x.indexdef !~ '\) WHERE ' AND x.columns[1:cardinality(d.columns)] = d.columns
                        AND substring(x.indexdef FROM ' USING (\w+) ') = substring(d.indexdef FROM ' USING (\w+) ')
                        -- of two equal ones keep the unique, else the first by name
                        AND (cardinality(x.columns) > cardinality(d.columns) OR x.is_unique > d.is_unique
                             OR (x.is_unique = d.is_unique AND x.indexrelname < d.indexrelname))
                      ORDER BY cardinality(x.columns), x.indexrelname LIMIT 1) k ON true
        WHERE d.instance_id = inst.instance_id AND d.valid_to IS NULL AND d.is_valid
          AND NOT d.is_unique AND NOT d.is_primary AND d.indexdef !~ '\) WHERE '), '[]');

        -- end_session: long idle transactions at the newest collection
        recs := recs || coalesce((SELECT jsonb_agg(jsonb_build_array(inst.name, 'end_session',
               'end session ' || l.pid || ' (' || coalesce(l.usename, '?') || '@' || coalesce(l.datname, '?') || '), idle in a transaction for '
                   || round(l.xact_age_s::numeric) || ' s',
               'SELECT pg_terminate_backend(' || l.pid || ');',
               jsonb_build_object('pid', l.pid, 'xact_age_s', l.xact_age_s, 'xmin_age', l.xmin_age,
                                  'application_name', l.application_name, 'at', l.collected_at),
               'releases its locks and lets vacuum remove rows dead since its snapshot',
               least(0.2 + l.xact_age_s / 36000.0, 0.6)))
        FROM pganalytics.lock_waits l
        WHERE l.instance_id = inst.instance_id AND l.kind = 'idle_in_transaction' AND l.xact_age_s >= c_idle_s
          AND l.collected_at = (SELECT max(x.collected_at) FROM pganalytics.lock_waits x
                                WHERE x.instance_id = inst.instance_id AND x.collected_at > now() - interval '10 minutes')), '[]');

        -- setting: work_mem when temporary files are written fast
        IF EXISTS (SELECT FROM pganalytics.series s WHERE s.instance_id = inst.instance_id AND s.metric = 'pg_database_temp_bytes') THEN
            SELECT avg(t.v) INTO v_temp
            FROM (SELECT r.ts, sum(r.value) AS v
                  FROM pganalytics.read_series(inst.name, 'pg_database_temp_bytes', v_from, now(), 'auto') r
                  GROUP BY r.ts) t;
            IF v_temp >= c_temp_rate THEN
                recs := recs || jsonb_build_array(jsonb_build_array(inst.name, 'setting', 'raise work_mem: sorts and hashes spill to disk',
                    'ALTER SYSTEM SET work_mem = ''...''; SELECT pg_reload_conf();  -- or SET work_mem for the sessions below',
                    jsonb_build_object('temp_bytes_per_s', v_temp,
                        'spilling_queryids', (SELECT jsonb_agg(x.queryid) FROM (
                            SELECT d.queryid FROM pganalytics.query_stat_deltas d
                            WHERE d.instance_id = inst.instance_id AND d.collected_at > v_from AND d.temp_blks_written > 0
                            GROUP BY 1 ORDER BY sum(d.temp_blks_written) DESC LIMIT 5) x)),
                    'temporary files at ' || pg_size_pretty(v_temp::bigint) || '/s become memory work',
                    least(v_temp / (100 * c_temp_rate), 0.5)));
            END IF;
        END IF;

        -- rewrite_query: heavy and slow statements
        recs := recs || coalesce((SELECT jsonb_agg(jsonb_build_array(inst.name, 'rewrite_query',
               'make query ' || q.queryid || ' cheaper: ' || round((100 * q.share)::numeric, 1) || ' % of execution time, '
                   || round(q.mean_ms::numeric, 1) || ' ms a call',
               NULL::text,
               jsonb_build_object('queryid', q.queryid, 'calls', q.calls, 'mean_ms', q.mean_ms, 'time_share', q.share,
                                  'query', (SELECT left(t.query, 300) FROM pganalytics.query_texts t
                                            WHERE t.instance_id = inst.instance_id AND t.queryid = q.queryid LIMIT 1)),
               'up to ' || round((100 * q.share)::numeric, 1) || ' % of the server''s execution time (see analyze_query())',
               q.share))
        FROM (SELECT d.queryid, sum(d.calls) AS calls, sum(d.total_exec_time) / nullif(sum(d.calls), 0) AS mean_ms,
                     sum(d.total_exec_time) / nullif(total_ms, 0) AS share
              FROM pganalytics.query_stat_deltas d
              WHERE d.instance_id = inst.instance_id AND d.toplevel AND d.collected_at > v_from
              GROUP BY 1) q
        WHERE q.share >= c_share AND q.mean_ms >= c_slow_ms), '[]');
    END LOOP;
    RETURN QUERY
        SELECT (row_number() OVER (PARTITION BY r.instance ORDER BY r.score DESC, r.kind, r.action))::int,
               r.instance, r.kind, r.action, r.statement, r.evidence, r.expected_effect, r.score
        FROM (SELECT e ->> 0 AS instance, e ->> 1 AS kind, e ->> 2 AS action, e ->> 3 AS statement,
                     e -> 4 AS evidence, e ->> 5 AS expected_effect, (e ->> 6)::float8 AS score
              FROM jsonb_array_elements(recs) e) r
        ORDER BY r.instance, r.score DESC, r.kind, r.action;
END
$$;
COMMENT ON FUNCTION pganalytics.recommendations(text, interval) IS
    'ranked actions per instance: indexes to add (hypopg-checked), unused and duplicate indexes, idle sessions to end, work_mem, queries to rewrite';
REVOKE ALL ON FUNCTION pganalytics.recommendations(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.recommendations(text, interval) TO pganalytics_admin;
