-- Store one capture's index advice (collector/index_advice.py, source 'index_advice'): p_rows
-- is a JSON array of {"datname", "queryid", "schemaname", "relname", "columns": [...],
-- "create_statement", "cost_before", "cost_after", "verified_with"}; cost_after and
-- verified_with are both null (not checked: no hypopg on the target) or both given.
-- Returns the rows stored; 0 when already delivered.
-- depends: ingest/begin_rows_snapshot.sql
CREATE OR REPLACE FUNCTION pganalytics.ingest_index_advice(
    p_instance_id  int,
    p_collected_at timestamptz,
    p_rows         jsonb)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad_n  bigint;
    bad    jsonb;
    stored int;
BEGIN
    IF NOT pganalytics.begin_rows_snapshot('ingest_index_advice', p_instance_id, 'index_advice', p_collected_at, p_rows) THEN
        RETURN 0;  -- already delivered
    END IF;
    SELECT n, e INTO bad_n, bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS a(e, n)
    WHERE CASE WHEN jsonb_typeof(e->'datname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'schemaname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'relname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'create_statement') IS DISTINCT FROM 'string' THEN true
               WHEN jsonb_typeof(e->'queryid') IS DISTINCT FROM 'number' THEN true
               WHEN jsonb_typeof(e->'columns') IS DISTINCT FROM 'array' OR jsonb_array_length(e->'columns') = 0 THEN true
               WHEN jsonb_typeof(e->'cost_before') IS DISTINCT FROM 'number' THEN true
               WHEN jsonb_typeof(e->'cost_after') NOT IN ('number', 'null') AND e ? 'cost_after' THEN true
               ELSE false END
    ORDER BY n LIMIT 1;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_index_advice: row % needs datname, schemaname, relname and create_statement strings, a number queryid and cost_before, a non-empty columns array: %',
            bad_n, left(bad::text, 200);
    END IF;
    -- the table's CHECKs say the rest (verified_with 'hypopg' exactly when cost_after is given)
    INSERT INTO pganalytics.index_advice
        (instance_id, collected_at, datname, queryid, schemaname, relname, columns,
         create_statement, cost_before, cost_after, verified_with)
    SELECT p_instance_id, p_collected_at, r.datname, r.queryid, r.schemaname, r.relname,
           ARRAY(SELECT jsonb_array_elements_text(r.columns)), r.create_statement,
           r.cost_before, r.cost_after, r.verified_with
    FROM jsonb_to_recordset(p_rows) AS r(
        datname text, queryid bigint, schemaname text, relname text, columns jsonb,
        create_statement text, cost_before float8, cost_after float8, verified_with text)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_index_advice(int, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_index_advice(int, timestamptz, jsonb) TO pganalytics_collector;
