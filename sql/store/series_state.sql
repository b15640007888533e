-- depends: store/frame_values.sql
-- The series state as rows, one a series (revision 0005's table): series_state_blocks
-- unnested, NaN read as NULL. For psql, tests and SQL-side scoring (a join of rollups_1m on
-- bucket > last_bucket); maintain() and the detectors read the blocks themselves.
CREATE OR REPLACE VIEW pganalytics.series_state AS
SELECT b.instance_id, u.series_id, u.n::bigint AS n, u.mean, u.m2,
       nullif(u.ewma, 'NaN') AS ewma, nullif(u.last_value, 'NaN') AS last_value,
       to_timestamp(nullif(u.last_bucket, 'NaN')) AS last_bucket,
       nullif(u.counter_last, 'NaN') AS counter_last,
       get_byte(b.gauge, (u.k - 1)::int) = 1 AS gauge,
       b.model_version, b.updated_at
FROM pganalytics.series_state_blocks b
CROSS JOIN LATERAL unnest(b.series_ids, pganalytics.frame_values(b.n), pganalytics.frame_values(b.mean),
                          pganalytics.frame_values(b.m2), pganalytics.frame_values(b.ewma),
                          pganalytics.frame_values(b.last_value), pganalytics.frame_values(b.last_bucket),
                          pganalytics.frame_values(b.counter_last))
    WITH ORDINALITY AS u(series_id, n, mean, m2, ewma, last_value, last_bucket, counter_last, k);
GRANT SELECT ON pganalytics.series_state TO pganalytics_admin;
