-- Record the databases seen on an instance (from pg_stat_database); renames are followed.
CREATE OR REPLACE FUNCTION pganalytics.register_databases(p_instance_id int, p_datids oid[], p_datnames text[])
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed int;
BEGIN
    IF cardinality(p_datids) IS DISTINCT FROM cardinality(p_datnames) THEN
        RAISE EXCEPTION 'register_databases: datids and datnames must be arrays of the same length';
    END IF;
    INSERT INTO pganalytics.databases AS d (instance_id, datid, datname)
    SELECT p_instance_id, i, n FROM unnest(p_datids, p_datnames) AS u(i, n)
    ON CONFLICT (instance_id, datid) DO UPDATE SET datname = EXCLUDED.datname
        WHERE d.datname IS DISTINCT FROM EXCLUDED.datname;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.register_databases(int, oid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.register_databases(int, oid[], text[]) TO pganalytics_collector;
