-- The instance-keyed tables no longer reference pganalytics.instances. On a distributed store
-- (pganalytics install --distributed) instances is a reference table and these tables are
-- sharded by instance_id; Citus then checks each key by reading the reference table in the
-- same transaction that writes the shards, and refuses what the store does all the time: a
-- delivery that creates a day partition after such a read ("cannot execute parallel DDL on
-- table ... after SELECT command on reference table instances"), or a multi-shard write
-- (maintain(), retention) followed by a write to instances ("cannot modify table instances
-- because there was a parallel operation on a distributed table"). The keys bought nothing
-- the store uses: their ON DELETE CASCADE has no user (no function of the store, nor the
-- CLI, deletes an instance), and the ingest functions check the instance themselves before
-- they write (ingest_samples, begin_snapshot, series_ids: "no instance with id ...").
-- The names are looked up, not spelled: every foreign key of the schema to instances goes.
DO $drop$
DECLARE
    k record;
BEGIN
    FOR k IN
        SELECT c.conrelid::regclass AS tbl, c.conname
        FROM pg_catalog.pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = 'pganalytics.instances'::regclass
          AND c.connamespace = 'pganalytics'::regnamespace AND c.conparentid = 0
        ORDER BY 1, 2
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', k.tbl, k.conname);
    END LOOP;
END
$drop$;
-- downgrade: ALTER TABLE pganalytics.databases ADD CONSTRAINT databases_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.series ADD CONSTRAINT series_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.query_texts ADD CONSTRAINT query_texts_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.query_stats ADD CONSTRAINT query_stats_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.pgss_info ADD CONSTRAINT pgss_info_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.query_executions ADD CONSTRAINT query_executions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.settings_history ADD CONSTRAINT settings_history_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.sample_layouts ADD CONSTRAINT sample_layouts_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
-- downgrade: ALTER TABLE pganalytics.rollup_progress ADD CONSTRAINT rollup_progress_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES pganalytics.instances ON DELETE CASCADE;
