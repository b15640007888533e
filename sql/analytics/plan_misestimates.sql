-- depends: analytics/plan_nodes.sql
-- Plan nodes whose row estimate is off by 10x or more either way (analysed plans only):
-- the usual root of bad join orders and nested loops over large inputs.
CREATE OR REPLACE VIEW pganalytics.plan_misestimates AS
SELECT n.*,
       -- > 1: more rows than estimated; < 1: fewer (Actual Rows is per loop, like Plan Rows)
       greatest(n.actual_rows, 1) / greatest(n.plan_rows, 1) AS misestimate_factor
FROM pganalytics.plan_nodes n
WHERE n.actual_rows IS NOT NULL
  AND n.actual_loops > 0
  AND (greatest(n.actual_rows, 1) / greatest(n.plan_rows, 1) >= 10
       OR greatest(n.plan_rows, 1) / greatest(n.actual_rows, 1) >= 10);
GRANT SELECT ON pganalytics.plan_misestimates TO pganalytics_gateway, pganalytics_admin;
