-- The relation scans of one EXPLAIN (FORMAT JSON) document, in plan order: node type,
-- relation, index, filter and index condition (as EXPLAIN prints them), estimated rows.
-- NULL in, '[]' out: a query without a stored plan has no scans to show.
CREATE OR REPLACE FUNCTION pganalytics.plan_scans(p_plan jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'node', n ->> 'Node Type', 'relation', n ->> 'Relation Name', 'index', n ->> 'Index Name',
               'filter', n ->> 'Filter', 'index_cond', n ->> 'Index Cond',
               'plan_rows', (n ->> 'Plan Rows')::float8)), '[]')
    FROM pg_catalog.jsonb_path_query(coalesce(p_plan, '[]'), 'strict $.**?(exists (@."Relation Name") || exists (@."Index Name"))') AS n
$$;
COMMENT ON FUNCTION pganalytics.plan_scans(jsonb) IS
    'the relation scans of an EXPLAIN (FORMAT JSON) document: node, relation, index, filter, index condition, estimated rows';
REVOKE ALL ON FUNCTION pganalytics.plan_scans(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.plan_scans(jsonb) TO pganalytics_admin;
