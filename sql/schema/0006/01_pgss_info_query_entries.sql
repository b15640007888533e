-- The number of pg_stat_statements entries stored for the instance (its query_stats rows),
-- kept by ingest_query_stats(): api_instances counted them per instance instead, 2 M index
-- entries at 10,000 instances x 200 statements (623 ms for the list).
ALTER TABLE pganalytics.pgss_info ADD COLUMN query_entries bigint NOT NULL DEFAULT 0;
UPDATE pganalytics.pgss_info i SET query_entries = (SELECT count(*) FROM pganalytics.query_stats q
                                                    WHERE q.instance_id = i.instance_id);
-- downgrade: ALTER TABLE pganalytics.pgss_info DROP COLUMN query_entries;
