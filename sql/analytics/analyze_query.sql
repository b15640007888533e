-- One statement over [p_from, p_to) against the time just before (the seed's
-- POST /ai/analyze/query/{hash}): one JSON document with
--   statistics    per period: calls, mean ms, blocks hit/read, temp blocks and rows per call
--   plan          its newest stored plan's scans (node, relation, index, filter), hashes and
--                 findings (plan_findings(): selective seq scans, a x10 row mis-estimate,
--                 large nested loops, sorts/hashes over work_mem)
--   plan_changes  each run of one plan hash in the day up to p_to: when it was seen and the
--                 statement's mean latency meanwhile (a plan change with latency moving with it)
--   waits         what its sessions waited on (average active sessions per event)
--   tables        statistics age of the relations it reads: modifications since the last
--                 analyze, their share of live rows, last analyze and vacuum age
--   blockers      the sessions at the head of the lock chains it waited in
--   index_advice  hypopg-checked indexes proposed for it
--   causes        root_cause_rules() over the statement's own evidence (same vocabulary and
--                 shape as diagnose()), and a summary
-- depends: analytics/diagnosis_inputs.sql
-- depends: analytics/root_cause_rules.sql
-- depends: analytics/plan_findings.sql
CREATE OR REPLACE FUNCTION pganalytics.analyze_query(
    p_instance text,
    p_queryid  bigint,
    p_from     timestamptz,
    p_to       timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER  -- read-only; lets admins call it without table privileges
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    iid        int;
    inputs     jsonb;
    verdict    jsonb;
    j_stats    jsonb;
    j_changes  jsonb;
    j_waits    jsonb;
    j_tables   jsonb;
    j_plan     jsonb;
    j_findings jsonb;
    rels       text[];
    q          jsonb;
BEGIN
    IF p_queryid IS NULL THEN
        RAISE EXCEPTION 'analyze_query: queryid must not be null';
    END IF;
    inputs := pganalytics.diagnosis_inputs(p_instance, p_from, p_to, p_queryid);  -- validates the rest
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    q := (SELECT e FROM jsonb_array_elements(inputs -> 'queries') e WHERE e ->> 'queryid' = p_queryid::text);
    IF q IS NULL AND NOT EXISTS (SELECT FROM pganalytics.query_stat_deltas d
                                 WHERE d.instance_id = iid AND d.queryid = p_queryid
                                   AND d.collected_at > p_from - interval '1 day' AND d.collected_at <= p_to) THEN
        RAISE EXCEPTION 'analyze_query: query % has no statistics on instance % in the day up to %',
            p_queryid, pg_catalog.quote_literal(p_instance), p_to;
    END IF;
    verdict := pganalytics.root_cause_rules(inputs, '{}');

    SELECT jsonb_object_agg(p.k, jsonb_build_object(
               'calls', (q #>> ARRAY[p.k, 'calls'])::float8,
               'mean_ms', (q #>> ARRAY[p.k, 'time_ms'])::float8 / nullif((q #>> ARRAY[p.k, 'calls'])::float8, 0),
               'shared_blocks_per_call', ((q #>> ARRAY[p.k, 'hit'])::float8 + (q #>> ARRAY[p.k, 'read'])::float8)
                                         / nullif((q #>> ARRAY[p.k, 'calls'])::float8, 0),
               'read_blocks_per_call', (q #>> ARRAY[p.k, 'read'])::float8 / nullif((q #>> ARRAY[p.k, 'calls'])::float8, 0),
               'temp_blocks_per_call', (q #>> ARRAY[p.k, 'temp'])::float8 / nullif((q #>> ARRAY[p.k, 'calls'])::float8, 0),
               'rows_per_call', (q #>> ARRAY[p.k, 'rows'])::float8 / nullif((q #>> ARRAY[p.k, 'calls'])::float8, 0)))
    INTO j_stats
    FROM (VALUES ('w'), ('b')) AS p (k);
    j_stats := jsonb_build_object('window', j_stats -> 'w', 'baseline', j_stats -> 'b');

    -- Runs of one plan hash (gaps-and-islands over the captures) and the latency during each.
    WITH caps AS (
        SELECT e.collected_at, e.plan_hash,
               e.plan_hash IS DISTINCT FROM lag(e.plan_hash) OVER (ORDER BY e.collected_at) AS starts
        FROM pganalytics.query_executions e
        WHERE e.instance_id = iid AND e.queryid = p_queryid
          AND e.collected_at >= p_to - interval '1 day' AND e.collected_at < p_to),
    runs AS (
        SELECT c.plan_hash, min(c.collected_at) AS first_at, max(c.collected_at) AS last_at, count(*) AS captures
        FROM (SELECT caps.*, sum(caps.starts::int) OVER (ORDER BY caps.collected_at) AS run FROM caps) c
        GROUP BY c.run, c.plan_hash),
    lat AS (
        SELECT r.first_at, sum(d.total_exec_time) / nullif(sum(d.calls), 0) AS mean_ms, sum(d.calls) AS calls
        FROM runs r
        JOIN pganalytics.query_stat_deltas d
          ON d.instance_id = iid AND d.queryid = p_queryid AND d.toplevel
         AND d.collected_at > r.first_at AND d.collected_at <= r.last_at + interval '1 minute'
        GROUP BY r.first_at)
    SELECT coalesce(jsonb_agg(jsonb_build_object('plan_hash', r.plan_hash, 'first_at', r.first_at,
                                                 'last_at', r.last_at, 'captures', r.captures,
                                                 'mean_ms', l.mean_ms, 'calls', l.calls) ORDER BY r.first_at), '[]')
    INTO j_changes
    FROM runs r LEFT JOIN lat l ON l.first_at = r.first_at;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'wait', (w ->> 'type') || ':' || (w ->> 'event'), 'state', w ->> 'state',
               'sessions', (w ->> 'w')::float8 / greatest(coalesce((inputs #>> '{ticks,w}')::float8, (inputs #>> '{seconds,w}')::float8), 1),
               'sessions_before', (w ->> 'b')::float8 / greatest(coalesce((inputs #>> '{ticks,b}')::float8, (inputs #>> '{seconds,b}')::float8), 1))
               ORDER BY (w ->> 'w')::float8 DESC NULLS LAST), '[]')
    INTO j_waits
    FROM jsonb_array_elements(inputs -> 'waits') w;

    SELECT p INTO j_plan FROM jsonb_array_elements(inputs -> 'plans') p WHERE (p ->> 'queryid')::bigint = p_queryid;
    SELECT array_agg(DISTINCT s ->> 'relation') INTO rels
    FROM jsonb_array_elements(coalesce(j_plan -> 'w_scans', '[]') || coalesce(j_plan -> 'b_scans', '[]')) s
    WHERE s ->> 'relation' IS NOT NULL;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'schemaname', t ->> 'schemaname', 'relname', t ->> 'relname',
               'n_live_tup', (t #>> '{metrics,pg_table_n_live_tup,w_max}')::float8,
               'n_mod_since_analyze', (t #>> '{metrics,pg_table_n_mod_since_analyze,w_max}')::float8,
               'modified_share', (t #>> '{metrics,pg_table_n_mod_since_analyze,w_max}')::float8
                                 / nullif((t #>> '{metrics,pg_table_n_live_tup,w_max}')::float8, 0),
               'analyze_age_s', (t #>> '{metrics,pg_table_analyze_age_s,w_max}')::float8,
               'vacuum_age_s', (t #>> '{metrics,pg_table_vacuum_age_s,w_max}')::float8,
               'n_dead_tup', (t #>> '{metrics,pg_table_n_dead_tup,w_max}')::float8)), '[]')
    INTO j_tables
    FROM jsonb_array_elements(inputs -> 'tables') t
    WHERE t ->> 'relname' = ANY (rels)
       OR (rels IS NULL AND q ->> 'query' ~* ('\m' || regexp_replace(t ->> 'relname', '([.*+?^${}()|\[\]\\])', '\\\1', 'g') || '\M'));

    -- the newest stored plan read against the statement's own rows, temp blocks and memory
    j_findings := pganalytics.plan_findings(
        (SELECT e.execution_plan FROM pganalytics.query_executions e
         WHERE e.instance_id = iid AND e.queryid = p_queryid AND e.collected_at < p_to
         ORDER BY e.collected_at DESC LIMIT 1),
        (j_stats #>> '{window,rows_per_call}')::float8,
        (j_stats #>> '{window,temp_blocks_per_call}')::float8,
        coalesce((inputs #>> '{settings,current,work_mem}')::float8 * 1024, 4194304),
        coalesce((inputs #>> '{settings,current,hash_mem_multiplier}')::float8, 2.0),
        (SELECT coalesce(jsonb_object_agg(t ->> 'relname', (t ->> 'n_live_tup')::float8)
                         FILTER (WHERE t ->> 'n_live_tup' IS NOT NULL), '{}')
         FROM jsonb_array_elements(j_tables) t));

    RETURN jsonb_build_object(
        'instance', p_instance, 'queryid', p_queryid, 'query', q ->> 'query',
        'window', verdict -> 'window',
        'statistics', j_stats,
        'plan', CASE WHEN j_plan IS NULL THEN NULL
                     ELSE jsonb_build_object('scans', coalesce(j_plan -> 'w_scans', j_plan -> 'b_scans'),
                                             'hashes_before', j_plan -> 'b_hashes', 'hashes_in_window', j_plan -> 'w_hashes',
                                             'estimated_rows', coalesce(j_plan -> 'w_rows', j_plan -> 'b_rows'),
                                             'findings', j_findings) END,
        'plan_changes', j_changes,
        'waits', j_waits,
        'tables', j_tables,
        'blockers', inputs -> 'blockers',
        'index_advice', inputs -> 'advice',
        'causes', verdict -> 'causes',
        'summary', verdict -> 'summary');
END
$$;
COMMENT ON FUNCTION pganalytics.analyze_query(text, bigint, timestamptz, timestamptz) IS
    'one statement in the window against the time before: statistics, plan and its changes, waits, tables, blockers, index advice, causes';
REVOKE ALL ON FUNCTION pganalytics.analyze_query(text, bigint, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.analyze_query(text, bigint, timestamptz, timestamptz) TO pganalytics_admin;
