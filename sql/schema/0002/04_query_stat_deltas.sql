-- Per-interval history: what each entry did between two snapshots. exec_time_sq is the
-- interval's sum of squared execution times, recovered from pg_stat_statements' cumulative
-- mean and (population) stddev, so per-interval stddev is exact, not guessed.
CREATE TABLE pganalytics.query_stat_deltas (
    instance_id          int         NOT NULL,
    dbid                 oid         NOT NULL,
    userid               oid         NOT NULL,
    queryid              bigint      NOT NULL,
    toplevel             boolean     NOT NULL,
    collected_at         timestamptz NOT NULL,
    interval_s           float8,
    after_reset          boolean     NOT NULL DEFAULT false,
    calls                bigint      NOT NULL,
    plans                bigint      NOT NULL,
    total_plan_time      float8      NOT NULL,
    total_exec_time      float8      NOT NULL,
    exec_time_sq         float8      NOT NULL,
    rows                 bigint      NOT NULL,
    shared_blks_hit      bigint      NOT NULL,
    shared_blks_read     bigint      NOT NULL,
    shared_blks_dirtied  bigint      NOT NULL,
    shared_blks_written  bigint      NOT NULL,
    temp_blks_read       bigint      NOT NULL,
    temp_blks_written    bigint      NOT NULL,
    shared_blk_read_time float8      NOT NULL,
    wal_bytes            numeric     NOT NULL
) PARTITION BY RANGE (collected_at);
CREATE INDEX query_stat_deltas_collected_brin ON pganalytics.query_stat_deltas USING brin (collected_at);
CREATE INDEX query_stat_deltas_query ON pganalytics.query_stat_deltas (instance_id, queryid, collected_at);
