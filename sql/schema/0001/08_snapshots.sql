-- Delivery ledger: one row per (instance, source, collected_at) batch. Inserting it in the
-- same transaction as the batch's data makes every delivery idempotent.
CREATE TABLE pganalytics.snapshots (
    instance_id  int         NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    source       text        NOT NULL,
    collected_at timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    row_count    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, source, collected_at)
);
