-- One instance's statements over a window (detect_live() every minute, diagnose(),
-- api_queries(), explain_incident()) read query_stat_deltas by (instance_id, collected_at).
-- The (instance_id, queryid, collected_at) index serves that only by walking every entry of the
-- instance in the day's partition (no skip scan before PostgreSQL 18), so the read grew with
-- the time of day and the collection rate: 53 ms for a 5-minute window at noon with a 15 s
-- cycle, 2.7 ms with this index (bench/query_stat_reads.py measures it on the real store).
-- Built on every partition; on a distributed store Citus builds it on every shard.
CREATE INDEX query_stat_deltas_by_time ON pganalytics.query_stat_deltas (instance_id, collected_at);
-- downgrade: DROP INDEX pganalytics.query_stat_deltas_by_time;
