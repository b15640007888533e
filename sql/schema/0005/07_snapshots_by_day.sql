-- The delivery ledger grows by one row per batch (~5,000 a second at 10,000 instances): it is
-- now partitioned by day and kept as long as the raw frames (retention.raw), so retention
-- drops it with them. No foreign key to instances: its per-row check cost three quarters of
-- the ledger's insert time (21 vs 6 us a row, measured), and ingest_samples() already checks
-- every instance of a group once; the old table's ON DELETE CASCADE had no user (instances
-- are never deleted by the store's functions).
ALTER TABLE pganalytics.snapshots RENAME TO snapshots_0004;
ALTER TABLE pganalytics.snapshots_0004 RENAME CONSTRAINT snapshots_pkey TO snapshots_0004_pkey;
ALTER TABLE pganalytics.snapshots_0004 RENAME CONSTRAINT snapshots_instance_id_fkey TO snapshots_0004_instance_id_fkey;
CREATE TABLE pganalytics.snapshots (
    instance_id  int         NOT NULL,
    source       text        NOT NULL,
    collected_at timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    row_count    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, source, collected_at)
) PARTITION BY RANGE (collected_at);
DO $move$
DECLARE
    day date;
BEGIN
    FOR day IN SELECT DISTINCT (s.collected_at AT TIME ZONE 'UTC')::date FROM pganalytics.snapshots_0004 s LOOP
        EXECUTE pg_catalog.format(
            'CREATE TABLE pganalytics.%I PARTITION OF pganalytics.snapshots FOR VALUES FROM (%L) TO (%L)',
            'snapshots_p' || to_char(day, 'YYYYMMDD'),
            day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END
$move$;
INSERT INTO pganalytics.snapshots SELECT * FROM pganalytics.snapshots_0004;
DROP TABLE pganalytics.snapshots_0004;
-- downgrade: ALTER TABLE pganalytics.snapshots RENAME TO snapshots_0005; ALTER TABLE pganalytics.snapshots_0005 RENAME CONSTRAINT snapshots_pkey TO snapshots_0005_pkey; CREATE TABLE pganalytics.snapshots (instance_id int NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE, source text NOT NULL, collected_at timestamptz NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now(), row_count bigint NOT NULL DEFAULT 0, PRIMARY KEY (instance_id, source, collected_at)); INSERT INTO pganalytics.snapshots SELECT * FROM pganalytics.snapshots_0005; DROP TABLE pganalytics.snapshots_0005;
