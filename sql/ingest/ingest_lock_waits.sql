-- Store one collection's lock waiters and long idle-in-transaction sessions
-- (collector/activity.py, source 'lock_waits'): p_rows is a JSON array of objects with the
-- columns of pganalytics.lock_waits except instance_id and collected_at; kind and pid are
-- required, (kind, pid) is unique. Returns the rows stored; 0 when already delivered.
-- depends: ingest/begin_rows_snapshot.sql
CREATE OR REPLACE FUNCTION pganalytics.ingest_lock_waits(
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
    -- Validation failing after the ledger row is written rolls that back too.
    IF NOT pganalytics.begin_rows_snapshot('ingest_lock_waits', p_instance_id, 'lock_waits', p_collected_at, p_rows) THEN
        RETURN 0;  -- already delivered
    END IF;
    SELECT n, e INTO bad_n, bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS a(e, n)
    WHERE CASE WHEN e->>'kind' IS NULL OR e->>'kind' NOT IN ('lock_wait', 'idle_in_transaction') THEN true
               WHEN jsonb_typeof(e->'pid') IS DISTINCT FROM 'number' THEN true
               WHEN (e->>'pid')::numeric % 1 <> 0 THEN true
               WHEN jsonb_typeof(e->'blocking_pids') NOT IN ('array', 'null')
                 OR jsonb_typeof(e->'root_blocker_pids') NOT IN ('array', 'null') THEN true
               ELSE false END
    ORDER BY n LIMIT 1;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_lock_waits: row % needs kind ''lock_wait'' or ''idle_in_transaction'', a whole-number pid and arrays for blocking_pids/root_blocker_pids: %',
            bad_n, left(bad::text, 200);
    END IF;
    IF EXISTS (SELECT FROM jsonb_to_recordset(p_rows) AS r(kind text, pid int)
               GROUP BY kind, pid HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'ingest_lock_waits: a (kind, pid) pair occurs twice'
            USING ERRCODE = 'cardinality_violation';
    END IF;
    INSERT INTO pganalytics.lock_waits
        (instance_id, collected_at, kind, pid, datname, usename, application_name, backend_type,
         state, queryid, wait_event_type, wait_event, xact_age_s, state_age_s, xid_age, xmin_age,
         lock_wait_s, blocking_pids, root_blocker_pids, root_blocker_pid, root_blocker_state,
         root_blocker_queryid, root_blocker_xact_age_s, chain_depth)
    SELECT p_instance_id, p_collected_at, r.kind, r.pid, r.datname, r.usename, r.application_name,
           r.backend_type, r.state, r.queryid, r.wait_event_type, r.wait_event, r.xact_age_s,
           r.state_age_s, r.xid_age, r.xmin_age, r.lock_wait_s, r.blocking_pids, r.root_blocker_pids,
           r.root_blocker_pid, r.root_blocker_state, r.root_blocker_queryid, r.root_blocker_xact_age_s,
           r.chain_depth
    FROM jsonb_to_recordset(p_rows) AS r(
        kind text, pid int, datname text, usename text, application_name text, backend_type text,
        state text, queryid bigint, wait_event_type text, wait_event text, xact_age_s float8,
        state_age_s float8, xid_age int, xmin_age int, lock_wait_s float8, blocking_pids int[],
        root_blocker_pids int[], root_blocker_pid int, root_blocker_state text,
        root_blocker_queryid bigint, root_blocker_xact_age_s float8, chain_depth int);
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_lock_waits(int, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_lock_waits(int, timestamptz, jsonb) TO pganalytics_collector;
