-- What the live detectors know, one row per instance (a block, as series_state_blocks): the
-- state of plpython/anomaly.py's Bank for every (type, subject) that instance's derived metrics
-- have had (anomaly_inputs()), stepped by maintain() once a minute (sql/store/detect_live.sql).
-- keys[i] ('<type>/<subject>') owns row i of each part, float8s big-endian as every block:
-- read and written once per instance per minute, not a row per series. The state is in two
-- parts because they change at different rates: `hot` (~250 bytes a key: the statistics and
-- likelihoods) every minute, `profiles` (~3 KB a key: the hour-of-day and hour-of-week
-- profiles) once an hour, so a minute's UPDATE carries a twelfth of the bytes and leaves the
-- profiles' TOAST value as it was.
CREATE TABLE pganalytics.anomaly_state_blocks (
    instance_id   int         NOT NULL PRIMARY KEY,
    keys          text[]      NOT NULL,
    hot           bytea       NOT NULL,
    profiles      bytea       NOT NULL,
    scored_until  timestamptz NOT NULL,  -- the end of the last minute scored
    model_version int,                   -- the anomaly_models version the scores used
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Random doubles do not compress: store them out of line without trying.
ALTER TABLE pganalytics.anomaly_state_blocks ALTER COLUMN hot SET STORAGE EXTERNAL,
    ALTER COLUMN profiles SET STORAGE EXTERNAL;
GRANT SELECT ON pganalytics.anomaly_state_blocks TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.anomaly_state_blocks;
