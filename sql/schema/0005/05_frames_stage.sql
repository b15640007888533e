-- Staging for COPY of frames (one row per batch), as samples_stage was for rows per sample:
-- permanent UNLOGGED, owner-owned, insert-only for the collector, read back by stage_xid.
CREATE UNLOGGED TABLE pganalytics.sample_frames_stage (
    batch_no   int      NOT NULL,
    series_ids int[]    NOT NULL,
    vals       float8[] NOT NULL,
    stage_xid  xid8     NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
CREATE INDEX sample_frames_stage_xid ON pganalytics.sample_frames_stage (stage_xid, batch_no);
COMMENT ON TABLE pganalytics.sample_frames_stage IS
    'sample frames staged by COPY (batch_no per batch of a delivery group); consumed by ingest_samples()';
GRANT INSERT (batch_no, series_ids, vals) ON pganalytics.sample_frames_stage TO pganalytics_collector;
-- downgrade: DROP TABLE pganalytics.sample_frames_stage;
