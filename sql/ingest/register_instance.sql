-- Add or update a monitored instance by name, its connection reference included; returns its
-- id. conn_ref must not hold a password (the table's CHECK says so in its error). Admin only:
-- the collector registers its configured targets with register_target(), which never moves
-- a registered instance elsewhere.
CREATE OR REPLACE FUNCTION pganalytics.register_instance(
    p_name text, p_conn_ref text, p_labels jsonb DEFAULT '{}', p_server_version_num int DEFAULT NULL)
RETURNS int
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pganalytics.instances AS i (name, conn_ref, labels, server_version_num)
    VALUES (p_name, p_conn_ref, coalesce(p_labels, '{}'), p_server_version_num)
    ON CONFLICT (name) DO UPDATE
        SET conn_ref = EXCLUDED.conn_ref,
            labels = EXCLUDED.labels,
            server_version_num = coalesce(EXCLUDED.server_version_num, i.server_version_num)
    RETURNING instance_id;
$$;
REVOKE ALL ON FUNCTION pganalytics.register_instance(text, text, jsonb, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.register_instance(text, text, jsonb, int) TO pganalytics_admin;
