-- Every node of every stored plan, with estimated vs actual rows (actuals only for
-- EXPLAIN ANALYZE plans). jsonb_path_query walks the tree to any depth ('strict' so lax
-- array unwrapping does not return nodes twice). PG 17+ uses plan_nodes.pg17.sql.
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
       (node ->> 'Plan Rows')::float8       AS plan_rows,
       (node ->> 'Actual Rows')::float8     AS actual_rows,
       (node ->> 'Actual Loops')::float8    AS actual_loops,
       (node ->> 'Actual Total Time')::float8 AS actual_total_time
FROM pganalytics.query_executions e,
     jsonb_path_query(e.execution_plan, 'strict $.**?(exists (@."Node Type"))') AS node;
GRANT SELECT ON pganalytics.plan_nodes TO pganalytics_gateway, pganalytics_admin;
