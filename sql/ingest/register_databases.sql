-- Record the databases seen on instances (from pg_stat_database); renames are followed.
-- Element i of the three arrays is one (instance, datid, datname); when a database occurs
-- more than once (several batches of one instance in a group), the last occurrence wins.
-- Runs as its caller: ingest_samples(), as the store's owner.
CREATE OR REPLACE FUNCTION pganalytics.register_databases(p_instance_ids int[], p_datids oid[], p_datnames text[])
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed int;
BEGIN
    IF cardinality(p_instance_ids) IS DISTINCT FROM cardinality(p_datids)
       OR cardinality(p_datids) IS DISTINCT FROM cardinality(p_datnames) THEN
        RAISE EXCEPTION 'register_databases: instance ids, datids and datnames must be arrays of the same length';
    END IF;
    IF array_position(p_instance_ids, NULL) IS NOT NULL OR array_position(p_datids, NULL) IS NOT NULL
       OR array_position(p_datnames, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'register_databases: instance ids, datids and datnames must not hold nulls';
    END IF;
    INSERT INTO pganalytics.databases AS d (instance_id, datid, datname)
    SELECT DISTINCT ON (i, o) i, o, n
    FROM unnest(p_instance_ids, p_datids, p_datnames) WITH ORDINALITY AS u(i, o, n, ord)
    ORDER BY i, o, ord DESC
    ON CONFLICT (instance_id, datid) DO UPDATE SET datname = EXCLUDED.datname
        WHERE d.datname IS DISTINCT FROM EXCLUDED.datname;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.register_databases(int[], oid[], text[]) FROM PUBLIC;
