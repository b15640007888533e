-- Staging for COPY of frames (one row per batch), as samples_stage was for rows per sample:
-- permanent UNLOGGED, owner-owned, insert-only for the collector, read back by stage_xid.
-- A frame names its layout by id (pganalytics.register_layouts() gives the ids, once per
-- layout): its ~250 series ids would otherwise double every frame's bytes and cost a lookup.
CREATE UNLOGGED TABLE pganalytics.sample_frames_stage (
    batch_no   int   NOT NULL,
    layout_id  int   NOT NULL,
    vals       bytea NOT NULL,  -- float8 values, big-endian (see sample_frames)
    stage_xid  xid8  NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
) WITH (toast_tuple_target = 8160);
-- toast_tuple_target: a frame of ~250 values (2 kB) would otherwise be pglz-compressed as it
-- is staged (~30 us a frame), and stay compressed in sample_frames, paying again at every read.
ALTER TABLE pganalytics.sample_frames_stage ALTER COLUMN vals SET STORAGE EXTERNAL;  -- never compressed
CREATE INDEX sample_frames_stage_xid ON pganalytics.sample_frames_stage (stage_xid, batch_no);
COMMENT ON TABLE pganalytics.sample_frames_stage IS
    'sample frames staged by COPY (batch_no per batch of a delivery group); consumed by ingest_samples()';
GRANT INSERT (batch_no, layout_id, vals) ON pganalytics.sample_frames_stage TO pganalytics_collector;
-- downgrade: DROP TABLE pganalytics.sample_frames_stage;
