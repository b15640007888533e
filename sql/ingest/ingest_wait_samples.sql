-- Store one collection interval of wait-event samples (collector/activity.py, source
-- 'wait_samples'): p_rows is a JSON array of objects {datname, queryid, backend_type, state,
-- wait_event_type, wait_event, samples, ticks, interval_s}, one per distinct key. Returns the
-- rows stored; 0 when this batch was already delivered.
-- depends: ingest/begin_rows_snapshot.sql
CREATE OR REPLACE FUNCTION pganalytics.ingest_wait_samples(
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
    IF NOT pganalytics.begin_rows_snapshot('ingest_wait_samples', p_instance_id, 'wait_samples', p_collected_at, p_rows) THEN
        RETURN 0;  -- already delivered
    END IF;
    SELECT n, e INTO bad_n, bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS a(e, n)
    WHERE CASE WHEN jsonb_typeof(e->'samples') IS DISTINCT FROM 'number'
                 OR jsonb_typeof(e->'ticks') IS DISTINCT FROM 'number' THEN true
               WHEN (e->>'samples')::numeric < 1 OR (e->>'ticks')::numeric < 1
                 OR (e->>'samples')::numeric % 1 <> 0 OR (e->>'ticks')::numeric % 1 <> 0 THEN true
               WHEN jsonb_typeof(e->'queryid') NOT IN ('number', 'null') THEN true
               WHEN jsonb_typeof(e->'interval_s') NOT IN ('number', 'null') THEN true
               ELSE false END
    ORDER BY n LIMIT 1;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_wait_samples: row % is not an object with whole numbers samples >= 1 and ticks >= 1 (and numeric queryid, interval_s): %',
            bad_n, left(bad::text, 200);
    END IF;
    IF EXISTS (SELECT FROM jsonb_to_recordset(p_rows) AS r(datname text, queryid bigint, backend_type text,
                   state text, wait_event_type text, wait_event text)
               GROUP BY datname, queryid, backend_type, state, wait_event_type, wait_event
               HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'ingest_wait_samples: a (datname, queryid, backend_type, state, wait_event_type, wait_event) key occurs twice'
            USING ERRCODE = 'cardinality_violation', HINT = 'aggregate samples per key before sending';
    END IF;
    PERFORM pganalytics.ensure_partitions('pganalytics.wait_samples', p_collected_at, p_collected_at);
    INSERT INTO pganalytics.wait_samples
        (instance_id, collected_at, interval_s, ticks, datname, queryid, backend_type, state,
         wait_event_type, wait_event, samples)
    SELECT p_instance_id, p_collected_at, r.interval_s, r.ticks, r.datname, r.queryid, r.backend_type,
           r.state, r.wait_event_type, r.wait_event, r.samples
    FROM jsonb_to_recordset(p_rows) AS r(interval_s float8, ticks int, datname text, queryid bigint,
         backend_type text, state text, wait_event_type text, wait_event text, samples int);
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ingest_wait_samples(int, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.ingest_wait_samples(int, timestamptz, jsonb) TO pganalytics_collector;
