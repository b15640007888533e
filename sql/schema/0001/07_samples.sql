-- Time-series samples, loaded by COPY. Partitioned by day (retention = DROP a partition),
-- BRIN on ts (rows arrive in time order; a btree would cut COPY speed by 3x). No foreign
-- keys: the snapshot ledger, not per-row checks, guards what gets in.
CREATE TABLE pganalytics.samples (
    instance_id int         NOT NULL,
    series_id   int         NOT NULL,
    ts          timestamptz NOT NULL,
    value       float8      NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX samples_ts_brin ON pganalytics.samples USING brin (ts) WITH (pages_per_range = 32);
GRANT INSERT ON pganalytics.samples TO pganalytics_collector;
