-- depends: ingest/begin_snapshot.sql
-- The common first step of every ingest function that takes a batch as a JSON array of row
-- objects (ingest_lock_waits, ingest_wait_samples, ingest_plans, ingest_settings): instance,
-- collected_at and rows given, rows an array of objects, then the batch recorded in the
-- ledger with its row count. p_caller names the function in error messages. Returns false
-- when the batch was delivered before: the caller then stores nothing.
CREATE OR REPLACE FUNCTION pganalytics.begin_rows_snapshot(
    p_caller text, p_instance_id int, p_source text, p_collected_at timestamptz, p_rows jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad_n bigint;
BEGIN
    IF p_instance_id IS NULL OR p_collected_at IS NULL OR p_rows IS NULL THEN
        RAISE EXCEPTION '%: instance, collected_at and rows must not be null', p_caller;
    END IF;
    IF jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION '%: rows must be a JSON array, got %', p_caller, jsonb_typeof(p_rows);
    END IF;
    SELECT a.n INTO bad_n FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS a(e, n)
    WHERE jsonb_typeof(a.e) <> 'object' ORDER BY a.n LIMIT 1;
    IF bad_n IS NOT NULL THEN
        RAISE EXCEPTION '%: row % is not a JSON object', p_caller, bad_n;
    END IF;
    RETURN pganalytics.begin_snapshot(p_instance_id, p_source, p_collected_at,
                                      p_row_count => jsonb_array_length(p_rows));
END
$$;
REVOKE ALL ON FUNCTION pganalytics.begin_rows_snapshot(text, int, text, timestamptz, jsonb) FROM PUBLIC;
