-- A user's verdict on a diagnosed cause: confirmed (it was this) or rejected (it was not).
-- The evidence features are computed now, by diagnose() over the same window, and stored with
-- the verdict: the raw data goes with retention, the example stays for training. Returns the
-- feedback id. SECURITY DEFINER: admins may add verdicts but not write the table directly (a
-- planted feature vector would train the model).
-- depends: analytics/diagnose.sql
CREATE OR REPLACE FUNCTION pganalytics.record_root_cause_feedback(
    p_instance  text,
    p_from      timestamptz,
    p_to        timestamptz,
    p_cause     text,
    p_confirmed boolean,
    p_note      text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    iid   int;
    feats jsonb;
    id    bigint;
BEGIN
    IF p_cause IS NULL OR p_cause !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'record_root_cause_feedback: cause must be a cause name like lock_contention, got %',
            coalesce(pg_catalog.quote_literal(p_cause), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_confirmed IS NULL THEN
        RAISE EXCEPTION 'record_root_cause_feedback: confirmed must be true or false' USING ERRCODE = '22023';
    END IF;
    feats := pganalytics.diagnose(p_instance, p_from, p_to) -> 'features';  -- validates instance and window
    SELECT i.instance_id INTO iid FROM pganalytics.instances i WHERE i.name = p_instance;
    INSERT INTO pganalytics.root_cause_feedback (instance_id, window_from, window_to, cause, confirmed, features, note, noted_by)
    VALUES (iid, p_from, p_to, p_cause, p_confirmed, feats, p_note, session_user)
    RETURNING feedback_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION pganalytics.record_root_cause_feedback(text, timestamptz, timestamptz, text, boolean, text) IS
    'a verdict on a diagnosed cause (confirmed or rejected), stored with the window''s evidence features for training';
REVOKE ALL ON FUNCTION pganalytics.record_root_cause_feedback(text, timestamptz, timestamptz, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.record_root_cause_feedback(text, timestamptz, timestamptz, text, boolean, text) TO pganalytics_admin;
