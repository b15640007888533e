-- Store one batch of generic plans (collector/plans.py): rows are
-- [{"queryid": bigint, "dbid": oid|null, "plan_hash": bigint, "plan": EXPLAIN (FORMAT JSON)}].
-- Plans rarely change, so a plan is stored only when its hash differs from the latest plan
-- stored for the same (instance, database, query) at or before this batch: the table then
-- holds one row per plan change, which is what makes plan changes visible. Returns the
-- number of plans stored (0 for an already delivered batch, via the snapshot ledger).
-- depends: ingest/begin_rows_snapshot.sql
CREATE OR REPLACE FUNCTION pganalytics.ingest_plans(p_instance_id int, p_collected_at timestamptz, p_rows jsonb)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad    record;
    stored int;
BEGIN
    -- Validation failing after the ledger row is written rolls that back too.
    IF NOT pganalytics.begin_rows_snapshot('ingest_plans', p_instance_id, 'plans', p_collected_at, p_rows) THEN
        RETURN 0;  -- already delivered
    END IF;
    SELECT * INTO bad FROM (
        SELECT r.ord, CASE
            WHEN jsonb_typeof(r.v -> 'queryid') IS DISTINCT FROM 'number' THEN 'has no numeric queryid'
            WHEN jsonb_typeof(r.v -> 'plan_hash') IS DISTINCT FROM 'number' THEN 'has no numeric plan_hash'
            WHEN coalesce(jsonb_typeof(r.v -> 'dbid'), 'null') NOT IN ('number', 'null') THEN 'has a dbid that is not a number'
            WHEN NOT coalesce(jsonb_path_exists(r.v -> 'plan', 'strict $[0]."Plan"."Node Type"', '{}', true), false)
                THEN 'has no EXPLAIN (FORMAT JSON) plan (a list whose first item has Plan."Node Type")'
            END AS problem
        FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS r(v, ord)) AS checked
    WHERE problem IS NOT NULL
    ORDER BY ord LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ingest_plans: row % %', bad.ord, bad.problem
            USING HINT = 'rows are {"queryid", "dbid", "plan_hash", "plan"} objects';
    END IF;
    IF EXISTS (SELECT FROM jsonb_array_elements(p_rows) AS v
               GROUP BY (v ->> 'queryid')::bigint, (v ->> 'dbid')::oid HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'ingest_plans: the batch holds a (queryid, dbid) twice'
            USING ERRCODE = 'cardinality_violation';
    END IF;

    INSERT INTO pganalytics.query_executions
        (instance_id, queryid, dbid, collected_at, plan_kind, plan_hash, execution_plan)
    SELECT p_instance_id, n.queryid, n.dbid, p_collected_at, 'generic', n.plan_hash, n.plan
    FROM (SELECT (v ->> 'queryid')::bigint AS queryid, (v ->> 'dbid')::oid AS dbid,
                 (v ->> 'plan_hash')::bigint AS plan_hash, v -> 'plan' AS plan
          FROM jsonb_array_elements(p_rows) AS v) AS n
    WHERE n.plan_hash IS DISTINCT FROM (
        SELECT e.plan_hash FROM pganalytics.query_executions e
        WHERE e.instance_id = p_instance_id AND e.queryid = n.queryid
          AND e.dbid IS NOT DISTINCT FROM n.dbid AND e.plan_kind = 'generic'
          AND e.collected_at <= p_collected_at
        ORDER BY e.collected_at DESC, e.execution_id DESC LIMIT 1);
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_plans(int, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_plans(int, timestamptz, jsonb) TO pganalytics_collector;
