-- What the detectors know about each series, kept current by maintain() from each newly
-- rolled minute (set-based, never per raw sample). The value fed in is the minute's mean for
-- a gauge and its per-second rate for a counter. Welford's count, mean and M2 (variance =
-- m2 / (n - 1)), an EWMA, and the latest minute; detectors keep their own parameters in the
-- open columns (seasonal profiles, thresholds) stamped with the model that set them. Scoring
-- the newest point of every series is a join of rollups_1m (bucket > last_bucket) with this.
CREATE TABLE pganalytics.series_state (
    instance_id   int         NOT NULL,
    series_id     int         NOT NULL,
    n             bigint      NOT NULL DEFAULT 0,
    mean          float8      NOT NULL DEFAULT 0,
    m2            float8      NOT NULL DEFAULT 0,
    ewma          float8,
    last_value    float8,
    last_bucket   timestamptz,
    counter_last  float8,
    profile       jsonb,
    thresholds    jsonb,
    model_version int,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, series_id)
) WITH (fillfactor = 70);  -- updated every minute: room on the page keeps updates HOT
GRANT SELECT ON pganalytics.series_state TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.series_state;
