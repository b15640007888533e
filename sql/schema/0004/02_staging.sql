-- Staging for COPY, in permanent UNLOGGED tables owned by pganalytics_owner (revision 0002
-- staged into each session's temp tables): the ingest functions run as the owner, and a
-- relation the caller can create or replace - a temp table with the caller's trigger, rule,
-- view or default - would run the caller's code with the owner's rights. The collector may
-- only INSERT (COPY) the data columns; stage_xid is filled by its default with the staging
-- transaction's id, so an ingest call reads only what its own transaction staged, whatever
-- other collectors stage at the same time, and deletes it once stored. Rows of a transaction
-- that committed without ingesting are removed by pganalytics.purge_staging().
-- Query texts now travel as arrays of the ingest call (only those not sent before).
ALTER TABLE pganalytics.query_stats_stage
    DROP COLUMN query,
    ADD COLUMN batch_no  int  NOT NULL DEFAULT 0,
    ADD COLUMN stage_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id();
CREATE INDEX query_stats_stage_xid ON pganalytics.query_stats_stage (stage_xid, batch_no);
COMMENT ON TABLE pganalytics.query_stats_stage IS
    'pg_stat_statements snapshots staged by COPY (batch_no per snapshot of a delivery group); consumed by ingest_query_stats()';
REVOKE ALL ON pganalytics.query_stats_stage FROM pganalytics_collector;
GRANT INSERT (batch_no, dbid, userid, queryid, toplevel, stats_since, plans, total_plan_time, calls,
              total_exec_time, min_exec_time, max_exec_time, mean_exec_time, stddev_exec_time, rows,
              shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written,
              local_blks_hit, local_blks_read, temp_blks_read, temp_blks_written,
              shared_blk_read_time, shared_blk_write_time, wal_records, wal_fpi, wal_bytes)
    ON pganalytics.query_stats_stage TO pganalytics_collector;
-- downgrade: GRANT SELECT ON pganalytics.query_stats_stage TO pganalytics_collector;
-- downgrade: REVOKE INSERT ON pganalytics.query_stats_stage FROM pganalytics_collector;
-- downgrade: COMMENT ON TABLE pganalytics.query_stats_stage IS NULL;
-- downgrade: ALTER TABLE pganalytics.query_stats_stage DROP COLUMN stage_xid, DROP COLUMN batch_no, ADD COLUMN query text;

-- The samples of a delivery group: one row per sample, batch_no naming its batch.
CREATE UNLOGGED TABLE pganalytics.samples_stage (
    batch_no  int    NOT NULL,
    series_id int    NOT NULL,
    value     float8 NOT NULL,
    stage_xid xid8   NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
CREATE INDEX samples_stage_xid ON pganalytics.samples_stage (stage_xid, batch_no);
COMMENT ON TABLE pganalytics.samples_stage IS
    'samples staged by COPY (batch_no per batch of a delivery group); consumed by ingest_samples()';
GRANT INSERT (batch_no, series_id, value) ON pganalytics.samples_stage TO pganalytics_collector;
-- downgrade: DROP TABLE pganalytics.samples_stage;
