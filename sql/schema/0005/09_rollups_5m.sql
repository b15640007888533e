-- 5m rollups of every series (date_bin buckets from the epoch, UTC), built by maintain() from
-- rollups_1m once a bucket is complete, and rebuilt when late frames land in it. One row per
-- (series, bucket): the per-series access path (reading one series scans no other). For a
-- counter, last is the counter's value at the end of the bucket and rates come from
-- consecutive lasts (read_series). Partitioned by day (retention.5m drops them).
CREATE TABLE pganalytics.rollups_5m (
    instance_id int         NOT NULL,
    series_id   int         NOT NULL,
    bucket      timestamptz NOT NULL,
    n           int         NOT NULL,
    sum         float8      NOT NULL,
    min         float8      NOT NULL,
    max         float8      NOT NULL,
    last        float8      NOT NULL,
    PRIMARY KEY (instance_id, series_id, bucket)
) PARTITION BY RANGE (bucket);
GRANT SELECT ON pganalytics.rollups_5m TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.rollups_5m;
