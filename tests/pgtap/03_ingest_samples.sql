-- Covers: register_layouts and ingest_samples, the set-based load of a delivery group's
-- frames — stores each snapshot once (again later or twice in one call: not again), records
-- the ledger with row counts, registers databases (last name wins) and refuses bad input
-- with a clear message.
BEGIN;
SELECT plan(18);
CREATE FUNCTION pg_temp.f8(float8[]) RETURNS bytea LANGUAGE sql AS $$ SELECT string_agg(float8send(v), ''::bytea ORDER BY k) FROM unnest($1) WITH ORDINALITY u(v, k) $$;

SELECT pganalytics.register_instance('tap_a', 'service=tap_a') AS a \gset
SELECT pganalytics.register_instance('tap_b', 'service=tap_b') AS b \gset
SELECT series_id AS sa FROM pganalytics.series_ids(ARRAY[:a], '{m}', '{"{}"}', '{gauge}') \gset
SELECT series_id AS sb FROM pganalytics.series_ids(ARRAY[:b], '{m}', '{"{}"}', '{gauge}') \gset
SELECT series_id AS sb2 FROM pganalytics.series_ids(ARRAY[:b], '{n}', '{"{}"}', '{gauge}') \gset
SELECT layout_id AS la FROM pganalytics.register_layouts(ARRAY[:a], '{1}', ARRAY[:sa]) \gset
SELECT layout_id AS lb FROM pganalytics.register_layouts(ARRAY[:b], '{2}', ARRAY[:sb, :sb2]) \gset
SELECT is((SELECT layout_id FROM pganalytics.register_layouts(ARRAY[:b, :a], '{2,1}', ARRAY[:sb, :sb2, :sa]) WHERE ord = 2),
          :la, 'a layout registered before gets its id again');

-- Batches 0 and 1 are the same snapshot of tap_a; batch 2 is tap_b's.
INSERT INTO pganalytics.sample_frames_stage (batch_no, layout_id, vals)
VALUES (0, :la, pg_temp.f8('{1}')), (1, :la, pg_temp.f8('{100}')), (2, :lb, pg_temp.f8('{2,3}'));
SELECT is(pganalytics.ingest_samples(ARRAY[0, 1, 2], ARRAY[:a, :a, :b], '{src,src,src}',
                                     ARRAY['2026-11-02 10:00+00', '2026-11-02 10:00+00', '2026-11-03 10:00+00']::timestamptz[],
                                     '{0,1,2}', '{5,5,6}', '{first,second,other}'),
          3::bigint, 'one copy of a snapshot given twice, and the other batch');
SELECT results_eq($$ SELECT value FROM pganalytics.samples ORDER BY value $$,
                  ARRAY[1, 2, 3]::float8[], 'the first copy is the one stored');
SELECT results_eq(format($$ SELECT series_id FROM pganalytics.samples WHERE instance_id = %s ORDER BY value $$, :b),
                  ARRAY[:sb, :sb2], 'each value belongs to its series');
SELECT results_eq($$ SELECT row_count FROM pganalytics.snapshots WHERE source = 'src' ORDER BY instance_id $$,
                  ARRAY[1, 2]::bigint[], 'the ledger counts each snapshot''s samples');
SELECT results_eq($$ SELECT datname FROM pganalytics.databases ORDER BY instance_id $$,
                  ARRAY['first', 'other'], 'databases of the stored batches only');
SELECT is_empty($$ SELECT FROM pganalytics.sample_frames_stage $$, 'the staged rows are consumed');
SELECT has_table('pganalytics', 'sample_frames_p20261103', 'day partitions of the staged days');

INSERT INTO pganalytics.sample_frames_stage (batch_no, layout_id, vals) VALUES (0, :la, pg_temp.f8('{7}'));
SELECT is(pganalytics.ingest_samples('{0}', ARRAY[:a], '{src}', ARRAY['2026-11-02 10:00+00']::timestamptz[]),
          0::bigint, 'a snapshot delivered before is not stored again');
INSERT INTO pganalytics.sample_frames_stage (batch_no, layout_id, vals) VALUES (0, :la, pg_temp.f8('{8}'));
SELECT is(pganalytics.ingest_samples('{0}', ARRAY[:a], '{src}', ARRAY['2026-11-02 10:01+00']::timestamptz[]),
          1::bigint, 'the next snapshot is stored');

SELECT throws_like(format($$ SELECT * FROM pganalytics.register_layouts('{%s}', '{1}', '{%s}') $$, :a, :sb),
                   '%names series ' || :sb || ', which is not a series of instance ' || :a || '%',
                   'a layout with a series of another instance is refused');
SELECT throws_like(format($$ SELECT * FROM pganalytics.register_layouts('{%s}', '{2}', '{%s,%s}') $$, :b, :sb, :sb),
                   '%names a series twice%', 'a layout naming a series twice is refused');
INSERT INTO pganalytics.sample_frames_stage (batch_no, layout_id, vals) VALUES (0, :lb, pg_temp.f8('{1,2}'));
SELECT throws_like(format($$ SELECT pganalytics.ingest_samples('{0}', '{%s}', '{src}', '{2026-11-04 10:00+00}') $$, :a),
                   '%names layout ' || :lb || ', which is not a layout of instance ' || :a || '%',
                   'a frame with another instance''s layout is refused');
SELECT throws_like($$ SELECT pganalytics.ingest_samples('{1}', '{-1}', '{src}', '{2026-11-04 10:00+00}') $$,
                   '%no instance with id -1%', 'an unknown instance is named');
SELECT throws_like(format($$ SELECT pganalytics.ingest_samples('{1}', '{%s}', '{"Bad Source"}', '{2026-11-04 10:00+00}') $$, :a),
                   '%source ''Bad Source''%lower-case identifier%', 'a bad source name is explained');
SELECT throws_like(format($$ SELECT pganalytics.ingest_samples('{0,0}', '{%s,%s}', '{s,t}', '{2026-11-04 10:00+00,2026-11-04 10:00+00}') $$, :a, :a),
                   '%batch number 0 is listed twice%', 'a batch number given twice is refused');
-- Batches are numbered upwards within a transaction: a staged frame at or above the lowest
-- listed number that no listed batch owns is a caller's mistake.
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, layout_id, vals) VALUES (3, :la, pg_temp.f8('{1}'));
SELECT throws_like(format($$ SELECT pganalytics.ingest_samples('{1}', '{%s}', '{src}', '{2026-11-04 10:00+00}') $$, :a),
                   '%a frame was staged for batch 3, which is not listed%', 'a staged frame of no listed batch is refused');
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, layout_id, vals) VALUES (4, :la, pg_temp.f8('{1,2}'));
SELECT throws_like(format($$ SELECT pganalytics.ingest_samples('{4}', '{%s}', '{src}', '{2026-11-04 10:00+00}') $$, :a),
                   '%frame of batch 4 has 16 bytes of values for the 1 series of its layout%', 'values not matching the layout are refused');

SELECT * FROM finish();
ROLLBACK;
