-- Fold one snapshot of a target's non-default settings into settings_history: a value that
-- changed (or went back to default) closes its row at p_collected_at and opens a new one.
-- p_rows: [{"name", "setting", "unit", "source", "pending_restart"}]. Returns rows opened.
-- depends: ingest/begin_rows_snapshot.sql
CREATE OR REPLACE FUNCTION pganalytics.ingest_settings(p_instance_id int, p_collected_at timestamptz, p_rows jsonb)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    opened int;
BEGIN
    IF NOT pganalytics.begin_rows_snapshot('ingest_settings', p_instance_id, 'settings', p_collected_at, p_rows) THEN
        RETURN 0;  -- already delivered
    END IF;
    -- A late replay of an older snapshot must not rewrite history.
    IF EXISTS (SELECT FROM pganalytics.settings_history
               WHERE instance_id = p_instance_id AND valid_from >= p_collected_at) THEN
        RETURN 0;
    END IF;
    IF EXISTS (SELECT FROM jsonb_array_elements(p_rows) e WHERE jsonb_typeof(e -> 'name') IS DISTINCT FROM 'string') THEN
        RAISE EXCEPTION 'ingest_settings: every row needs a "name" string';
    END IF;
    WITH incoming AS (
        SELECT r.name, r.setting, coalesce(r.pending_restart, false) AS pending_restart
        FROM jsonb_to_recordset(p_rows) AS r(name text, setting text, pending_restart boolean))
    UPDATE pganalytics.settings_history h SET valid_to = p_collected_at
    WHERE h.instance_id = p_instance_id AND h.valid_to IS NULL
      AND NOT EXISTS (SELECT FROM incoming i
                      WHERE i.name = h.name AND i.setting IS NOT DISTINCT FROM h.setting
                        AND i.pending_restart = h.pending_restart);
    INSERT INTO pganalytics.settings_history (instance_id, name, setting, unit, source, pending_restart, valid_from)
    SELECT p_instance_id, r.name, r.setting, r.unit, r.source, coalesce(r.pending_restart, false), p_collected_at
    FROM jsonb_to_recordset(p_rows) AS r(name text, setting text, unit text, source text, pending_restart boolean)
    WHERE NOT EXISTS (SELECT FROM pganalytics.settings_history h
                      WHERE h.instance_id = p_instance_id AND h.name = r.name AND h.valid_to IS NULL);
    GET DIAGNOSTICS opened = ROW_COUNT;
    RETURN opened;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_settings(int, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_settings(int, timestamptz, jsonb) TO pganalytics_collector;
