-- Shape of one pg_stat_statements snapshot as the collector COPYs it. Never holds rows:
-- each session stages into its own temp copy (pganalytics.open_staging()).
CREATE UNLOGGED TABLE pganalytics.query_stats_stage (
    dbid                  oid     NOT NULL,
    userid                oid     NOT NULL,
    queryid               bigint  NOT NULL,
    toplevel              boolean NOT NULL,
    stats_since           timestamptz,
    plans                 bigint  NOT NULL DEFAULT 0,
    total_plan_time       float8  NOT NULL DEFAULT 0,
    calls                 bigint  NOT NULL,
    total_exec_time       float8  NOT NULL,
    min_exec_time         float8  NOT NULL DEFAULT 0,
    max_exec_time         float8  NOT NULL DEFAULT 0,
    mean_exec_time        float8  NOT NULL DEFAULT 0,
    stddev_exec_time      float8  NOT NULL DEFAULT 0,
    rows                  bigint  NOT NULL DEFAULT 0,
    shared_blks_hit       bigint  NOT NULL DEFAULT 0,
    shared_blks_read      bigint  NOT NULL DEFAULT 0,
    shared_blks_dirtied   bigint  NOT NULL DEFAULT 0,
    shared_blks_written   bigint  NOT NULL DEFAULT 0,
    local_blks_hit        bigint  NOT NULL DEFAULT 0,
    local_blks_read       bigint  NOT NULL DEFAULT 0,
    temp_blks_read        bigint  NOT NULL DEFAULT 0,
    temp_blks_written     bigint  NOT NULL DEFAULT 0,
    shared_blk_read_time  float8  NOT NULL DEFAULT 0,
    shared_blk_write_time float8  NOT NULL DEFAULT 0,
    wal_records           bigint  NOT NULL DEFAULT 0,
    wal_fpi               bigint  NOT NULL DEFAULT 0,
    wal_bytes             numeric NOT NULL DEFAULT 0,
    query                 text
);
GRANT SELECT ON pganalytics.query_stats_stage TO pganalytics_collector;
