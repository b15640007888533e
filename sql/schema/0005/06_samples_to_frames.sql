-- Move the rows-per-sample data of revision 0001 into frames (one per instance and time, its
-- series ordered by id), then drop the old table and its staging. The `samples` name lives on
-- as a view over the frames (sql/store/samples.sql): queries reading it keep working.
DO $move$
DECLARE
    day date;
BEGIN
    FOR day IN SELECT DISTINCT (s.ts AT TIME ZONE 'UTC')::date FROM pganalytics.samples s LOOP
        EXECUTE pg_catalog.format(
            'CREATE TABLE pganalytics.%I PARTITION OF pganalytics.sample_frames FOR VALUES FROM (%L) TO (%L) WITH (toast_tuple_target = 8160)',
            'sample_frames_p' || to_char(day, 'YYYYMMDD'),
            day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    CREATE TEMP TABLE moved_frames ON COMMIT DROP AS
        SELECT s.instance_id, s.ts, array_agg(s.series_id ORDER BY s.series_id) AS series_ids,
               string_agg(float8send(s.value), ''::bytea ORDER BY s.series_id) AS vals
        FROM pganalytics.samples s GROUP BY s.instance_id, s.ts;
    INSERT INTO pganalytics.sample_layouts (instance_id, series_ids)
        SELECT DISTINCT m.instance_id, m.series_ids FROM moved_frames m;
    INSERT INTO pganalytics.sample_frames (instance_id, ts, layout_id, vals)
        SELECT m.instance_id, m.ts, l.layout_id, m.vals
        FROM moved_frames m JOIN pganalytics.sample_layouts l
          ON l.instance_id = m.instance_id AND l.series_ids = m.series_ids;
END
$move$;
DROP TABLE pganalytics.samples;
DROP TABLE pganalytics.samples_stage;
-- downgrade: DROP VIEW IF EXISTS pganalytics.samples; CREATE TABLE pganalytics.samples (instance_id int NOT NULL, series_id int NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL) PARTITION BY RANGE (ts); CREATE INDEX samples_ts_brin ON pganalytics.samples USING brin (ts) WITH (pages_per_range = 32); CREATE UNLOGGED TABLE pganalytics.samples_stage (batch_no int NOT NULL, series_id int NOT NULL, value float8 NOT NULL, stage_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()); CREATE INDEX samples_stage_xid ON pganalytics.samples_stage (stage_xid, batch_no); GRANT INSERT (batch_no, series_id, value) ON pganalytics.samples_stage TO pganalytics_collector;
-- downgrade: DO $back$ DECLARE day date; BEGIN FOR day IN SELECT DISTINCT (f.ts AT TIME ZONE 'UTC')::date FROM pganalytics.sample_frames f LOOP EXECUTE pg_catalog.format('CREATE TABLE pganalytics.%I PARTITION OF pganalytics.samples FOR VALUES FROM (%L) TO (%L)', 'samples_p' || to_char(day, 'YYYYMMDD'), day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'); END LOOP; INSERT INTO pganalytics.samples (instance_id, series_id, ts, value) SELECT f.instance_id, u.series_id, f.ts, v.value FROM pganalytics.sample_frames f JOIN pganalytics.sample_layouts l USING (instance_id, layout_id) CROSS JOIN LATERAL unnest(l.series_ids) WITH ORDINALITY AS u(series_id, k) CROSS JOIN LATERAL (SELECT ('x' || encode(substring(f.vals FROM 8 * (u.k::int - 1) + 1 FOR 8), 'hex'))::bit(64)::bigint AS b) r CROSS JOIN LATERAL (SELECT CASE WHEN r.b = 0 THEN 0::float8 ELSE (CASE WHEN r.b < 0 THEN -1 ELSE 1 END) * (1 + (r.b & 4503599627370495)::float8 / 4503599627370496) * 2::float8 ^ (((r.b >> 52) & 2047) - 1023) END AS value) v; END $back$;
