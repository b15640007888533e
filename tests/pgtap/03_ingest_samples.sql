-- Covers: register_layouts and ingest_samples, the set-based load of a delivery group's
-- frames — stores each snapshot once (again later or twice in one call: not again; the frames
-- are the ledger), marks the instances seen, registers databases (last name wins) and refuses
-- bad input with a clear message.
BEGIN;
SELECT plan(21);
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
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (0, :a, '2026-11-02 10:00+00', :la, pg_temp.f8('{1}')), (1, :a, '2026-11-02 10:00+00', :la, pg_temp.f8('{100}')),
       (2, :b, '2026-11-03 10:00+00', :lb, pg_temp.f8('{2,3}'));
SELECT is(pganalytics.ingest_samples(0, 3, '{0,1,2}', '{5,5,6}', '{first,second,other}'),
          3::bigint, 'one copy of a snapshot given twice, and the other batch');
SELECT results_eq($$ SELECT value FROM pganalytics.samples ORDER BY value $$,
                  ARRAY[1, 2, 3]::float8[], 'the first copy is the one stored');
SELECT results_eq(format($$ SELECT series_id FROM pganalytics.samples WHERE instance_id = %s ORDER BY value $$, :b),
                  ARRAY[:sb, :sb2], 'each value belongs to its series');
SELECT results_eq($$ SELECT last_seen_at FROM pganalytics.instance_seen ORDER BY instance_id $$,
                  ARRAY['2026-11-02 10:00+00', '2026-11-03 10:00+00']::timestamptz[], 'each instance is seen at its newest frame');
SELECT results_eq($$ SELECT datname FROM pganalytics.databases ORDER BY instance_id $$,
                  ARRAY['first', 'other'], 'databases of the stored batches only');
SELECT is_empty($$ SELECT FROM pganalytics.sample_frames_stage $$, 'the staged rows are consumed');
SELECT has_table('pganalytics', 'sample_frames_p20261103', 'day partitions of the staged days');

INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (3, :a, '2026-11-02 10:00+00', :la, pg_temp.f8('{7}'));
SELECT is(pganalytics.ingest_samples(3, 1), 0::bigint, 'a snapshot delivered before is not stored again');
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (4, :a, '2026-11-02 10:01+00', :la, pg_temp.f8('{8}'));
SELECT is(pganalytics.ingest_samples(4, 1), 1::bigint, 'the next snapshot is stored');

SELECT throws_like(format($$ SELECT * FROM pganalytics.register_layouts('{%s}', '{1}', '{%s}') $$, :a, :sb),
                   '%names series ' || :sb || ', which is not a series of instance ' || :a || '%',
                   'a layout with a series of another instance is refused');
SELECT throws_like(format($$ SELECT * FROM pganalytics.register_layouts('{%s}', '{2}', '{%s,%s}') $$, :b, :sb, :sb),
                   '%names a series twice%', 'a layout naming a series twice is refused');
-- Each refusal below raises before anything is stored; the statement's rows are rolled back
-- with it, the staged ones are cleared for the next case.
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (10, :a, '2026-11-04 10:00+00', :lb, pg_temp.f8('{1,2}'));
SELECT throws_like($$ SELECT pganalytics.ingest_samples(10, 1) $$,
                   '%names layout ' || :lb || ', which is not a layout of instance ' || :a || '%',
                   'a frame with another instance''s layout is refused');
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (11, -1, '2026-11-04 10:00+00', :la, pg_temp.f8('{1}'));
SELECT throws_like($$ SELECT pganalytics.ingest_samples(11, 1) $$,
                   '%names instance -1, which is not registered%', 'an unknown instance is named');
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (12, :a, '2026-11-04 10:00+00', :la, pg_temp.f8('{1}')), (12, :a, '2026-11-04 10:01+00', :la, pg_temp.f8('{1}'));
SELECT throws_like($$ SELECT pganalytics.ingest_samples(12, 2) $$,
                   '%2 frames were staged for batch 12 (one per batch)%', 'a batch number staged twice is refused');
-- Batches are numbered upwards within a transaction: a staged frame beyond the call's numbers
-- would never be stored, and a batch announced without a frame was lost on the way.
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (13, :a, '2026-11-04 10:00+00', :la, pg_temp.f8('{1}')), (15, :a, '2026-11-04 10:01+00', :la, pg_temp.f8('{1}'));
SELECT throws_like($$ SELECT pganalytics.ingest_samples(13, 2) $$,
                   '%a frame was staged for batch 15, beyond this call''s batches 13 .. 14%', 'a staged frame of no listed batch is refused');
SELECT throws_like($$ SELECT pganalytics.ingest_samples(13, 3) $$,
                   '%3 batches were announced from batch number 13, but 2 frames were staged for them%',
                   'a batch without a frame is refused');
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (16, :a, '2026-11-04 10:00+00', :la, pg_temp.f8('{1,2}'));
SELECT throws_like($$ SELECT pganalytics.ingest_samples(16, 1) $$,
                   '%frame of batch 16 has 16 bytes of values for the 1 series of its layout%', 'values not matching the layout are refused');
DELETE FROM pganalytics.sample_frames_stage;
INSERT INTO pganalytics.sample_frames_stage (batch_no, instance_id, collected_at, layout_id, vals)
VALUES (17, :a, now() + interval '2 days', :la, pg_temp.f8('{1}'));
SELECT throws_like($$ SELECT pganalytics.ingest_samples(17, 1) $$,
                   '%batch 17 was collected at %more than a day ahead of the store''s clock%', 'a batch from the future is refused');
SELECT throws_like($$ SELECT pganalytics.ingest_samples(NULL, 1) $$,
                   '%the first batch number and a count of batches >= 0 are required%', 'a missing batch number is explained');
SELECT is((SELECT count(*) FROM pganalytics.sample_frames), 3::bigint, 'nothing refused was stored');

SELECT * FROM finish();
ROLLBACK;
