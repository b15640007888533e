-- What a stored generic plan shows wrong with a statement, from the plan's estimates and the
-- statement's own statistics (the collector never runs EXPLAIN ANALYZE: no actual rows per
-- node, so the one mis-estimate we can check is the plan's top row count against the rows a
-- call returns). Each finding: {"finding", "node", "relation", "detail"} with
--   seq_scan_selective   a Seq Scan with a filter keeping <= 5 % of a table of >= 10,000 rows
--                        (p_table_rows: {"relname": live rows}, else the plan's own estimate)
--   misestimate          the top node's estimated rows and the rows a call returns differ x10+
--                        (not for a plain aggregate or a write: both return fixed counts)
--   nested_loop_large    a Nested Loop whose outer side is estimated at >= 10,000 rows, or
--                        >= 100 rows over a sequential scan on the inner side
--   sort_spill           a Sort, Hash or HashAggregate whose estimated input (rows x width) is
--                        over work_mem (hash: x hash_mem_multiplier) - "spilled" when the
--                        statement wrote temporary blocks, "may spill" otherwise
-- NULL plan in, '[]' out.
CREATE OR REPLACE FUNCTION pganalytics.plan_findings(
    p_plan                 jsonb,
    p_rows_per_call        float8 DEFAULT NULL,
    p_temp_blocks_per_call float8 DEFAULT NULL,
    p_work_mem_bytes       float8 DEFAULT 4194304,
    p_hash_mem_multiplier  float8 DEFAULT 2.0,
    p_table_rows           jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH nodes AS (
        SELECT n, (n ->> 'Plan Rows')::float8 AS rows, (n ->> 'Plan Width')::float8 AS width
        FROM jsonb_path_query(coalesce(p_plan, '[]'), 'strict $.**?(exists (@."Node Type"))') AS n),
    top AS (SELECT coalesce(p_plan -> 0 -> 'Plan', p_plan -> 'Plan') AS n),
    found AS (
        SELECT 1 AS ord, 'seq_scan_selective' AS finding, n ->> 'Node Type' AS node, n ->> 'Relation Name' AS relation,
               'filter ' || (n ->> 'Filter') || ' keeps an estimated ' || round(rows::numeric) || ' of '
                   || round(coalesce((p_table_rows ->> (n ->> 'Relation Name'))::float8, (n ->> 'Plan Rows')::float8)::numeric)
                   || ' rows: an index on the filtered columns reads only those' AS detail
        FROM nodes
        WHERE n ->> 'Node Type' = 'Seq Scan' AND n ? 'Filter'
          AND (p_table_rows ->> (n ->> 'Relation Name'))::float8 >= 10000
          AND rows <= 0.05 * (p_table_rows ->> (n ->> 'Relation Name'))::float8
        UNION ALL
        SELECT 2, 'misestimate', t.n ->> 'Node Type', NULL,
               'the plan expects ' || round((t.n ->> 'Plan Rows')::numeric) || ' rows, a call returns '
                   || round(p_rows_per_call::numeric, 1) || ' on average (x'
                   || round((greatest((t.n ->> 'Plan Rows')::float8, p_rows_per_call)
                             / greatest(least((t.n ->> 'Plan Rows')::float8, p_rows_per_call), 1))::numeric) || ')'
        FROM top t
        WHERE p_rows_per_call IS NOT NULL AND t.n IS NOT NULL
          AND NOT (t.n ->> 'Node Type' = 'Aggregate' AND t.n ->> 'Strategy' = 'Plain')
          AND t.n ->> 'Node Type' <> 'ModifyTable'
          AND greatest((t.n ->> 'Plan Rows')::float8, p_rows_per_call) >= 10
          AND greatest((t.n ->> 'Plan Rows')::float8, p_rows_per_call)
              >= 10 * greatest(least((t.n ->> 'Plan Rows')::float8, p_rows_per_call), 1)
        UNION ALL
        SELECT 3, 'nested_loop_large', 'Nested Loop', n -> 'Plans' -> 1 ->> 'Relation Name',
               'the outer side is estimated at ' || round((n -> 'Plans' -> 0 ->> 'Plan Rows')::numeric)
                   || ' rows, each a pass over the inner ' || (n -> 'Plans' -> 1 ->> 'Node Type')
                   || coalesce(' on ' || (n -> 'Plans' -> 1 ->> 'Relation Name'), '')
        FROM nodes
        WHERE n ->> 'Node Type' = 'Nested Loop'
          AND ((n -> 'Plans' -> 0 ->> 'Plan Rows')::float8 >= 10000
               OR ((n -> 'Plans' -> 0 ->> 'Plan Rows')::float8 >= 100 AND n -> 'Plans' -> 1 ->> 'Node Type' = 'Seq Scan'))
        UNION ALL
        SELECT 4, 'sort_spill', n ->> 'Node Type', NULL,
               'an estimated ' || pg_size_pretty((rows * width)::bigint) || ' to '
                   || lower(n ->> 'Node Type') || ' against ' || pg_size_pretty(lim::bigint) || ' of memory: '
                   || CASE WHEN coalesce(p_temp_blocks_per_call, 0) > 0
                           THEN 'spilled, ' || round(p_temp_blocks_per_call::numeric) || ' temporary blocks a call'
                           ELSE 'may spill to disk' END
        FROM (SELECT nodes.*, p_work_mem_bytes * CASE WHEN n ->> 'Node Type' = 'Hash' OR n ->> 'Strategy' = 'Hashed'
                                                      THEN p_hash_mem_multiplier ELSE 1 END AS lim
              FROM nodes) x
        WHERE (n ->> 'Node Type' IN ('Sort', 'Hash', 'Incremental Sort')
               OR (n ->> 'Node Type' = 'Aggregate' AND n ->> 'Strategy' = 'Hashed'))
          AND rows * width > lim)
    SELECT coalesce(jsonb_agg(jsonb_build_object('finding', finding, 'node', node, 'relation', relation, 'detail', detail)
                              ORDER BY ord, relation), '[]')
    FROM found
$$;
COMMENT ON FUNCTION pganalytics.plan_findings(jsonb, float8, float8, float8, float8, jsonb) IS
    'what a generic plan shows wrong: selective sequential scans, a x10 row mis-estimate, large nested loops, sorts and hashes over work_mem';
REVOKE ALL ON FUNCTION pganalytics.plan_findings(jsonb, float8, float8, float8, float8, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.plan_findings(jsonb, float8, float8, float8, float8, jsonb) TO pganalytics_admin;
