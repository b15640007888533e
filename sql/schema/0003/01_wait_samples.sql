-- Wait-event samples: how often each (database, query, backend type, state, wait event) was
-- seen in pg_stat_activity over `ticks` samples of one collection interval, so average
-- active sessions = samples / ticks. wait_event NULL with state 'active' means on CPU.
-- queryid is NULL when the target did not compute one (compute_query_id off, or a lock wait
-- during parse analysis). Partitioned by day like samples (retention = drop a partition),
-- BRIN on collected_at: rows arrive in time order.
CREATE TABLE pganalytics.wait_samples (
    instance_id     int         NOT NULL,
    collected_at    timestamptz NOT NULL,
    interval_s      float8,
    ticks           int         NOT NULL CONSTRAINT wait_samples_ticks_positive CHECK (ticks > 0),
    datname         text,
    queryid         bigint,
    backend_type    text,
    state           text,
    wait_event_type text,
    wait_event      text,
    samples         int         NOT NULL CONSTRAINT wait_samples_samples_positive CHECK (samples > 0)
) PARTITION BY RANGE (collected_at);
CREATE INDEX wait_samples_collected_brin ON pganalytics.wait_samples USING brin (collected_at);
CREATE INDEX wait_samples_query ON pganalytics.wait_samples (instance_id, queryid, collected_at);
GRANT SELECT ON pganalytics.wait_samples TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.wait_samples;
