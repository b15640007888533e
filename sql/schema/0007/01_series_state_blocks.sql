-- What the detectors know about each series, one row per instance (a block) instead of
-- revision 0005's row per series: maintain() folds every series of an instance each minute,
-- and as rows that was an index probe, a tuple lock and a heap update a series (~10 us, half
-- of maintain()'s time at fleet scale); a block is read and written once, and numpy folds it
-- (plpython/state.py). Element i of every field is series_ids[i]'s; the fields are float8s as
-- bytes (big-endian, as sample frames hold values: no per-value conversion into or out of
-- PL/Python), NaN standing for NULL. Read them as rows through the series_state view.
-- Scoring the newest point of every series is still a join of rollups_1m (bucket >
-- last_bucket) with that view, and in numpy a block against the minute's arrays.
CREATE TABLE pganalytics.series_state_blocks (
    instance_id   int         NOT NULL PRIMARY KEY,
    series_ids    int[]       NOT NULL,  -- ascending
    gauge         bytea       NOT NULL,  -- a byte a series: 1 a gauge (fed its minute's mean), 0 a counter (fed its rate)
    n             bytea       NOT NULL,  -- Welford's count of values fed
    mean          bytea       NOT NULL,
    m2            bytea       NOT NULL,  -- variance = m2 / (n - 1)
    ewma          bytea       NOT NULL,
    last_value    bytea       NOT NULL,  -- the last value fed
    last_bucket   bytea       NOT NULL,  -- the minute it was fed from, epoch seconds
    counter_last  bytea       NOT NULL,  -- the raw value at that minute's end (the next rate's start)
    profile       bytea,                 -- room for detectors: seasonal profiles (series x slot float8s),
    thresholds    bytea,                 -- thresholds,
    model_version int,                   -- and the model that set them
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Random doubles do not compress: store them out of line without trying (pglz on every update).
ALTER TABLE pganalytics.series_state_blocks ALTER COLUMN n SET STORAGE EXTERNAL, ALTER COLUMN mean SET STORAGE EXTERNAL,
    ALTER COLUMN m2 SET STORAGE EXTERNAL, ALTER COLUMN ewma SET STORAGE EXTERNAL,
    ALTER COLUMN last_value SET STORAGE EXTERNAL, ALTER COLUMN last_bucket SET STORAGE EXTERNAL,
    ALTER COLUMN counter_last SET STORAGE EXTERNAL, ALTER COLUMN profile SET STORAGE EXTERNAL;
INSERT INTO pganalytics.series_state_blocks
    (instance_id, series_ids, gauge, n, mean, m2, ewma, last_value, last_bucket, counter_last, updated_at)
SELECT s.instance_id, array_agg(s.series_id ORDER BY s.series_id),
       string_agg(CASE WHEN se.kind = 'gauge' THEN '\x01'::bytea ELSE '\x00'::bytea END, ''::bytea ORDER BY s.series_id),
       string_agg(float8send(s.n::float8), ''::bytea ORDER BY s.series_id),
       string_agg(float8send(s.mean), ''::bytea ORDER BY s.series_id),
       string_agg(float8send(s.m2), ''::bytea ORDER BY s.series_id),
       string_agg(float8send(coalesce(s.ewma, 'NaN')), ''::bytea ORDER BY s.series_id),
       string_agg(float8send(coalesce(s.last_value, 'NaN')), ''::bytea ORDER BY s.series_id),
       string_agg(float8send(coalesce(extract(epoch FROM s.last_bucket)::float8, 'NaN')), ''::bytea ORDER BY s.series_id),
       string_agg(float8send(coalesce(s.counter_last, 'NaN')), ''::bytea ORDER BY s.series_id),
       max(s.updated_at)
FROM pganalytics.series_state s
JOIN pganalytics.series se ON se.instance_id = s.instance_id AND se.series_id = s.series_id
GROUP BY s.instance_id;
DROP TABLE pganalytics.series_state;
GRANT SELECT ON pganalytics.series_state_blocks TO pganalytics_admin;
-- A downgrade puts back 0005's table, empty: the statistics then restart from the next minute.
-- downgrade: CREATE TABLE pganalytics.series_state (instance_id int NOT NULL, series_id int NOT NULL, n bigint NOT NULL DEFAULT 0, mean float8 NOT NULL DEFAULT 0, m2 float8 NOT NULL DEFAULT 0, ewma float8, last_value float8, last_bucket timestamptz, counter_last float8, profile jsonb, thresholds jsonb, model_version int, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (instance_id, series_id)) WITH (fillfactor = 70);
-- downgrade: GRANT SELECT ON pganalytics.series_state TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.series_state_blocks;
