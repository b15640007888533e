-- Every node of every stored plan, with the planner's estimates. Stored plans are generic
-- (EXPLAIN GENERIC_PLAN / force_generic_plan; the collector never runs EXPLAIN ANALYZE), so
-- there are no actual rows or times to show. jsonb_path_query walks the tree to any depth
-- ('strict' so lax array unwrapping does not return nodes twice). PG 17+ uses
-- plan_nodes.pg17.sql.
CREATE OR REPLACE VIEW pganalytics.plan_nodes AS
SELECT e.instance_id,
       e.execution_id,
       e.queryid,
       e.collected_at,
       e.plan_kind,
       node ->> 'Node Type'                 AS node_type,
       node ->> 'Relation Name'             AS relation_name,
       node ->> 'Index Name'                AS index_name,
       (node ->> 'Startup Cost')::float8    AS startup_cost,
       (node ->> 'Total Cost')::float8      AS total_cost,
       (node ->> 'Plan Rows')::float8       AS plan_rows
FROM pganalytics.query_executions e,
     pg_catalog.jsonb_path_query(e.execution_plan, 'strict $.**?(exists (@."Node Type"))') AS node;
COMMENT ON VIEW pganalytics.plan_nodes IS
    'Nodes of the stored (generic) plans with their estimates; for psql users and admins, not the gateway.';
REVOKE ALL ON pganalytics.plan_nodes FROM PUBLIC;
GRANT SELECT ON pganalytics.plan_nodes TO pganalytics_admin;
