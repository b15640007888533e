-- depends: ingest/ensure_ledger_partitions.sql
-- Open the delivery of one batch: record (instance, source, collected_at) in the ledger (with
-- its row count when known). Returns false when this batch was already delivered: the caller
-- then skips it (re-sending never double-counts). Must run in the same transaction as the
-- batch's data. (not SECURITY DEFINER: only the ingest functions, running as the store's
-- owner, call it).
CREATE OR REPLACE FUNCTION pganalytics.begin_snapshot(
    p_instance_id  int,
    p_source       text,
    p_collected_at timestamptz,
    p_row_count    bigint DEFAULT 0)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inserted int;
BEGIN
    IF p_instance_id IS NULL OR p_source IS NULL OR p_collected_at IS NULL THEN
        RAISE EXCEPTION 'begin_snapshot: instance, source and collected_at must not be null';
    END IF;
    IF p_source !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'begin_snapshot: source % must be a lower-case identifier', pg_catalog.quote_literal(p_source);
    END IF;
    IF NOT EXISTS (SELECT FROM pganalytics.instances WHERE instance_id = p_instance_id) THEN
        RAISE EXCEPTION 'begin_snapshot: no instance with id %', p_instance_id
            USING HINT = 'register it first with pganalytics.register_instance()';
    END IF;
    PERFORM pganalytics.ensure_ledger_partitions('begin_snapshot', p_collected_at, p_collected_at);
    INSERT INTO pganalytics.snapshots (instance_id, source, collected_at, row_count)
    VALUES (p_instance_id, p_source, p_collected_at, coalesce(p_row_count, 0))
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted = 0 THEN
        RETURN false;
    END IF;
    INSERT INTO pganalytics.instance_seen AS s (instance_id, last_seen_at) VALUES (p_instance_id, p_collected_at)
    ON CONFLICT (instance_id) DO UPDATE SET last_seen_at = greatest(s.last_seen_at, EXCLUDED.last_seen_at);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION pganalytics.begin_snapshot(int, text, timestamptz, bigint) FROM PUBLIC;
