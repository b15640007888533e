-- PG 17+: the same columns as plan_nodes.sql, typed by JSON_TABLE instead of ->> casts
-- (a malformed number becomes NULL instead of failing the whole query).
CREATE OR REPLACE VIEW pganalytics.plan_nodes AS
SELECT e.instance_id,
       e.execution_id,
       e.queryid,
       e.collected_at,
       e.plan_kind,
       n.node_type,
       n.relation_name,
       n.index_name,
       n.startup_cost,
       n.total_cost,
       n.plan_rows
FROM pganalytics.query_executions e,
     pg_catalog.jsonb_path_query(e.execution_plan, 'strict $.**?(exists (@."Node Type"))') AS node,
     JSON_TABLE(node, '$' COLUMNS (
         node_type         text   PATH '$."Node Type"',
         relation_name     text   PATH '$."Relation Name"',
         index_name        text   PATH '$."Index Name"',
         startup_cost      float8 PATH '$."Startup Cost"',
         total_cost        float8 PATH '$."Total Cost"',
         plan_rows         float8 PATH '$."Plan Rows"')) AS n;
COMMENT ON VIEW pganalytics.plan_nodes IS
    'Nodes of the stored (generic) plans with their estimates; for psql users and admins, not the gateway.';
REVOKE ALL ON pganalytics.plan_nodes FROM PUBLIC;
GRANT SELECT ON pganalytics.plan_nodes TO pganalytics_admin;
