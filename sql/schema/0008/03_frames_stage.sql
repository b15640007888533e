-- Staged frames carry their own instance and time: the collector sent them as array
-- parameters of ingest_samples() (psycopg dumps a list one element at a time: ~17 us a frame in
-- the collector, and ~10 us more in the store to unnest, check and join them back), and in the
-- COPY they are 12 bytes of a row it encodes anyway. The source is gone with the ledger. Still
-- permanent UNLOGGED, owner-owned, insert-only for the collector, read back by stage_xid.
DROP TABLE pganalytics.sample_frames_stage;
CREATE UNLOGGED TABLE pganalytics.sample_frames_stage (
    batch_no     int         NOT NULL,
    instance_id  int         NOT NULL,
    collected_at timestamptz NOT NULL,
    layout_id    int         NOT NULL,
    vals         bytea       NOT NULL,  -- float8 values, big-endian (see sample_frames)
    stage_xid    xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
) WITH (toast_tuple_target = 8160);
-- As in 0005: never pglz-compress a frame (~30 us each), here or in sample_frames.
ALTER TABLE pganalytics.sample_frames_stage ALTER COLUMN vals SET STORAGE EXTERNAL;
CREATE INDEX sample_frames_stage_xid ON pganalytics.sample_frames_stage (stage_xid, batch_no);
COMMENT ON TABLE pganalytics.sample_frames_stage IS
    'sample frames staged by COPY (one per batch of a delivery group: instance, time, layout, values); consumed by ingest_samples()';
GRANT INSERT (batch_no, instance_id, collected_at, layout_id, vals) ON pganalytics.sample_frames_stage TO pganalytics_collector;
-- downgrade: DROP TABLE pganalytics.sample_frames_stage;
-- downgrade: CREATE UNLOGGED TABLE pganalytics.sample_frames_stage (batch_no int NOT NULL, layout_id int NOT NULL, vals bytea NOT NULL, stage_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()) WITH (toast_tuple_target = 8160);
-- downgrade: ALTER TABLE pganalytics.sample_frames_stage ALTER COLUMN vals SET STORAGE EXTERNAL;
-- downgrade: CREATE INDEX sample_frames_stage_xid ON pganalytics.sample_frames_stage (stage_xid, batch_no);
-- downgrade: GRANT INSERT (batch_no, layout_id, vals) ON pganalytics.sample_frames_stage TO pganalytics_collector;
