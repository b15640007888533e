-- The collector's registration of the targets in its config file: adds a new instance, or
-- keeps a registered one's labels and server version current. It never changes where a
-- registered instance is reached: a connection reference can send the collector (and its
-- pg_monitor credentials) anywhere, so only pganalytics_admin changes it, with
-- register_instance() (`pganalytics targets add NAME --conn ...`). Returns the instance id.
CREATE OR REPLACE FUNCTION pganalytics.register_target(
    p_name text, p_conn_ref text, p_labels jsonb DEFAULT '{}', p_server_version_num int DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id  int;
    v_ref text;
BEGIN
    IF p_name IS NULL OR p_conn_ref IS NULL THEN
        RAISE EXCEPTION 'register_target: name and connection reference must not be null';
    END IF;
    INSERT INTO pganalytics.instances (name, conn_ref, labels, server_version_num)
    VALUES (p_name, p_conn_ref, coalesce(p_labels, '{}'), p_server_version_num)
    ON CONFLICT (name) DO NOTHING
    RETURNING instance_id INTO v_id;
    IF v_id IS NOT NULL THEN
        RETURN v_id;
    END IF;
    SELECT i.instance_id, i.conn_ref INTO v_id, v_ref
    FROM pganalytics.instances i WHERE i.name = p_name FOR UPDATE;
    IF v_ref IS DISTINCT FROM p_conn_ref THEN
        RAISE EXCEPTION 'register_target: instance % is registered with another connection reference', pg_catalog.quote_literal(p_name)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'only pganalytics_admin changes it: pganalytics targets add ' || p_name || ' --conn ...';
    END IF;
    UPDATE pganalytics.instances i
    SET labels = coalesce(p_labels, i.labels),
        server_version_num = coalesce(p_server_version_num, i.server_version_num)
    WHERE i.instance_id = v_id
      AND (i.labels IS DISTINCT FROM coalesce(p_labels, i.labels)
           OR i.server_version_num IS DISTINCT FROM coalesce(p_server_version_num, i.server_version_num));
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.register_target(text, text, jsonb, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.register_target(text, text, jsonb, int) TO pganalytics_collector, pganalytics_admin;
