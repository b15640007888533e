-- Last seen pg_stat_statements_info per instance: a newer stats_reset means every entry was
-- reset; a growing dealloc means entries were evicted (and may come back with low counters).
CREATE TABLE pganalytics.pgss_info (
    instance_id  int         PRIMARY KEY REFERENCES pganalytics.instances ON DELETE CASCADE,
    collected_at timestamptz NOT NULL,
    dealloc      bigint      NOT NULL DEFAULT 0,
    stats_reset  timestamptz
);
