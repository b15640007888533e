-- Raw samples, one row per instance snapshot: the values of a layout's series at ts. Rows per
-- sample (revision 0001) cost a tuple header and a BRIN entry per value and capped ingest at a
-- fifth of COPY speed; a frame is one row per ~250 values. Day partitions (retention = DROP);
-- the btree reads one instance's time range; stored_xid (the inserting transaction, in commit
-- order's rough order) lets maintain() find frames that arrived after their
-- minute was rolled up. Partitions keep frames up to 8 kB inline (toast_tuple_target, set by
-- ensure_partitions): moving a value array to TOAST would double the writes. The values are
-- bytes, not float8[]: PostgreSQL converts an array element by element (~150 ns each) on the
-- way into PL/Python, the rollups' hot path; numpy reads these bytes as they are.
-- pganalytics.frame_values() turns them into a float8[].
CREATE TABLE pganalytics.sample_frames (
    instance_id int         NOT NULL,
    ts          timestamptz NOT NULL,
    layout_id   int         NOT NULL,
    vals        bytea       NOT NULL,  -- float8 values, big-endian, 8 bytes each (float8send())
    stored_xid  xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
) PARTITION BY RANGE (ts);
CREATE INDEX sample_frames_instance_ts ON pganalytics.sample_frames (instance_id, ts);
CREATE INDEX sample_frames_stored_xid ON pganalytics.sample_frames (stored_xid);  -- xid8 has no BRIN class; an ever-growing key appends at the right edge
COMMENT ON TABLE pganalytics.sample_frames IS
    'raw samples: one row per instance snapshot; value i (frame_values(vals)[i]) is of series sample_layouts.series_ids[i]; read them as rows through the samples view';
-- downgrade: DROP TABLE pganalytics.sample_frames;
