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
       n.plan_rows,
       n.actual_rows,
       n.actual_loops,
       n.actual_total_time
FROM pganalytics.query_executions e,
     jsonb_path_query(e.execution_plan, 'strict $.**?(exists (@."Node Type"))') AS node,
     JSON_TABLE(node, '$' COLUMNS (
         node_type         text   PATH '$."Node Type"',
         relation_name     text   PATH '$."Relation Name"',
         index_name        text   PATH '$."Index Name"',
         startup_cost      float8 PATH '$."Startup Cost"',
         total_cost        float8 PATH '$."Total Cost"',
         plan_rows         float8 PATH '$."Plan Rows"',
         actual_rows       float8 PATH '$."Actual Rows"',
         actual_loops      float8 PATH '$."Actual Loops"',
         actual_total_time float8 PATH '$."Actual Total Time"')) AS n;
GRANT SELECT ON pganalytics.plan_nodes TO pganalytics_gateway, pganalytics_admin;
