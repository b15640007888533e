-- The frames are their own delivery ledger: a snapshot's frame is unique by (instance, time,
-- layout), and ingest_samples() stores it with ON CONFLICT DO NOTHING, instead of first
-- recording (instance, source, collected_at) in pganalytics.snapshots. That ledger row cost as
-- much as the frame itself (~19 us of ~100 us of server time a frame, measured at 1,000
-- instances x 250 series). A layout stands for one source's series (sources share no series,
-- and a series set has one layout id, see 01), so the key tells a snapshot delivered again
-- from a new one as the ledger did. The index replaces (instance_id, ts), its prefix.
-- stored_at: when the frame reached the store (the ledger's ingested_at): delivery delay.
-- NULL for frames stored before this revision.
CREATE UNIQUE INDEX sample_frames_snapshot ON pganalytics.sample_frames (instance_id, ts, layout_id);
DROP INDEX pganalytics.sample_frames_instance_ts;
ALTER TABLE pganalytics.sample_frames ADD COLUMN stored_at timestamptz;
ALTER TABLE pganalytics.sample_frames ALTER COLUMN stored_at SET DEFAULT pg_catalog.now();
-- A downgrade keeps every frame, but 0007's ingest_samples() knows a snapshot by its ledger row,
-- which frames stored from 0008 on do not have: one of them delivered again would be stored twice.
-- downgrade: CREATE INDEX sample_frames_instance_ts ON pganalytics.sample_frames (instance_id, ts);
-- downgrade: DROP INDEX pganalytics.sample_frames_snapshot;
-- downgrade: ALTER TABLE pganalytics.sample_frames DROP COLUMN stored_at;
