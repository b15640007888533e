-- depends: ingest/ensure_partitions.sql
-- Before batches collected between p_min and p_max are recorded in the delivery ledger: refuse
-- them when more than a day ahead of the store's clock (a collector with a wrong clock), and
-- create the ledger's day partitions for them. A batch older than retention.raw is accepted:
-- its ledger row and frames go when maintain() next drops that day, and rollups never take
-- frames older than rollup.grace, so a copy delivered twice past retention is never counted twice.
-- Runs as its caller (the ingest functions, as the owner).
CREATE OR REPLACE FUNCTION pganalytics.ensure_ledger_partitions(p_caller text, p_min timestamptz, p_max timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_max > now() + interval '1 day' THEN
        RAISE EXCEPTION '%: a batch collected at % is more than a day ahead of the store''s clock (%)', p_caller, p_max, now()
            USING HINT = 'check the collector host''s clock';
    END IF;
    PERFORM pganalytics.ensure_partitions('pganalytics.snapshots', p_min, p_max);
END
$$;
REVOKE ALL ON FUNCTION pganalytics.ensure_ledger_partitions(text, timestamptz, timestamptz) FROM PUBLIC;
