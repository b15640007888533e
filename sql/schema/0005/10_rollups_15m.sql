-- 15m rollups of every series (date_bin buckets from the epoch, UTC), built by maintain() from
-- rollups_5m once a bucket is complete, and rebuilt when late frames land in it. One row per
-- (series, bucket): the per-series access path (reading one series scans no other). For a
-- counter, last is the counter's value at the end of the bucket and rates come from
-- consecutive lasts (read_series). Partitioned by day (retention.15m drops them).
-- The same columns and key as rollups_1m.
CREATE TABLE pganalytics.rollups_15m (LIKE pganalytics.rollups_1m INCLUDING ALL) PARTITION BY RANGE (bucket);
GRANT SELECT ON pganalytics.rollups_15m TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.rollups_15m;
