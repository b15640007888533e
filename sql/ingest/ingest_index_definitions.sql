-- Fold one snapshot of a target database's indexes (collector/snapshot.py, source
-- 'index_definitions') into index_definitions: an index gone from the snapshot, or whose
-- definition or validity changed, closes its row at p_collected_at; a new one opens a row.
-- The snapshot is of one database (datname in every row). A database without any index is sent
-- as one row holding only its datname, so that dropping its last index closes that index's row;
-- an empty array says nothing of any database and changes nothing. Returns the rows opened; 0
-- when already delivered.
-- depends: ingest/begin_rows_snapshot.sql
CREATE OR REPLACE FUNCTION pganalytics.ingest_index_definitions(
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
    db     text;
    opened int;
    no_indexes boolean;  -- the one-row form of a database without indexes: {"datname": ...}
BEGIN
    IF NOT pganalytics.begin_rows_snapshot('ingest_index_definitions', p_instance_id, 'index_definitions',
                                           p_collected_at, p_rows) THEN
        RETURN 0;  -- already delivered
    END IF;
    no_indexes := jsonb_array_length(p_rows) = 1  -- an array of objects: begin_rows_snapshot() checked
                  AND (SELECT array_agg(k) FROM jsonb_object_keys(p_rows -> 0) k) = '{datname}'
                  AND jsonb_typeof(p_rows -> 0 -> 'datname') = 'string';
    SELECT n, e INTO bad_n, bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS a(e, n)
    WHERE CASE WHEN jsonb_typeof(e->'datname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'schemaname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'relname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'indexrelname') IS DISTINCT FROM 'string'
                 OR jsonb_typeof(e->'indexdef') IS DISTINCT FROM 'string' THEN true
               WHEN jsonb_typeof(e->'columns') IS DISTINCT FROM 'array' THEN true
               WHEN jsonb_typeof(e->'is_unique') IS DISTINCT FROM 'boolean'
                 OR jsonb_typeof(e->'is_primary') IS DISTINCT FROM 'boolean'
                 OR jsonb_typeof(e->'is_valid') IS DISTINCT FROM 'boolean' THEN true
               ELSE false END
      AND NOT no_indexes
    ORDER BY n LIMIT 1;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_index_definitions: row % needs datname, schemaname, relname, indexrelname and indexdef strings, a columns array and booleans is_unique, is_primary, is_valid: %',
            bad_n, left(bad::text, 200);
    END IF;
    IF (SELECT count(DISTINCT e->>'datname') FROM jsonb_array_elements(p_rows) e) > 1 THEN
        RAISE EXCEPTION 'ingest_index_definitions: a snapshot is of one database, got several';
    END IF;
    IF EXISTS (SELECT FROM jsonb_to_recordset(p_rows) AS r(schemaname text, indexrelname text)
               GROUP BY schemaname, indexrelname HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'ingest_index_definitions: an index occurs twice'
            USING ERRCODE = 'cardinality_violation';
    END IF;
    db := p_rows -> 0 ->> 'datname';
    IF db IS NULL THEN
        RETURN 0;
    END IF;
    -- A late replay of an older snapshot must not rewrite history.
    IF EXISTS (SELECT FROM pganalytics.index_definitions
               WHERE instance_id = p_instance_id AND datname = db
                 AND (valid_from >= p_collected_at OR valid_to >= p_collected_at)) THEN
        RETURN 0;
    END IF;
    WITH incoming AS (
        SELECT r.* FROM jsonb_to_recordset(p_rows)
            AS r(schemaname text, indexrelname text, indexdef text, is_valid boolean))
    UPDATE pganalytics.index_definitions h SET valid_to = p_collected_at
    WHERE h.instance_id = p_instance_id AND h.datname = db AND h.valid_to IS NULL
      AND NOT EXISTS (SELECT FROM incoming i
                      WHERE i.schemaname = h.schemaname AND i.indexrelname = h.indexrelname
                        AND i.indexdef = h.indexdef AND i.is_valid = h.is_valid);
    INSERT INTO pganalytics.index_definitions
        (instance_id, datname, schemaname, relname, indexrelname, indexdef, columns,
         is_unique, is_primary, is_valid, valid_from)
    SELECT p_instance_id, db, r.schemaname, r.relname, r.indexrelname, r.indexdef,
           ARRAY(SELECT jsonb_array_elements_text(r.columns)), r.is_unique, r.is_primary, r.is_valid,
           p_collected_at
    FROM jsonb_to_recordset(p_rows) AS r(
        schemaname text, relname text, indexrelname text, indexdef text, columns jsonb,
        is_unique boolean, is_primary boolean, is_valid boolean)
    WHERE NOT no_indexes
      AND NOT EXISTS (SELECT FROM pganalytics.index_definitions h
                      WHERE h.instance_id = p_instance_id AND h.datname = db
                        AND h.schemaname = r.schemaname AND h.indexrelname = r.indexrelname
                        AND h.valid_to IS NULL);
    GET DIAGNOSTICS opened = ROW_COUNT;
    RETURN opened;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_index_definitions(int, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_index_definitions(int, timestamptz, jsonb) TO pganalytics_collector;
