-- Covers: the snapshot ledger — begin_snapshot accepts a batch once, refuses bad input,
-- and creates the ledger's day partition for the batch.
BEGIN;
SELECT plan(6);

SELECT pganalytics.register_instance('tap1', 'service=tap1') AS iid \gset
SELECT ok(pganalytics.begin_snapshot(:iid, 'pg_stat_database', '2026-11-02 10:00+00'),
          'first delivery is accepted');
SELECT ok(NOT pganalytics.begin_snapshot(:iid, 'pg_stat_database', '2026-11-02 10:00+00'),
          'the same batch again is refused');
SELECT has_table('pganalytics', 'snapshots_p20261102', 'the ledger''s day partition is created');
SELECT throws_like($$ SELECT pganalytics.begin_snapshot(-1, 'x', now()) $$,
                   '%no instance with id -1%', 'unknown instance is named');
SELECT throws_like($$ SELECT pganalytics.begin_snapshot(1, 'Bad Source', now()) $$,
                   '%must be a lower-case identifier%', 'bad source name is explained');
SELECT throws_like(format($$ SELECT pganalytics.begin_snapshot(%s, 'x', now() + interval '2 days') $$, :iid),
                   '%more than a day ahead of the store''s clock%', 'a batch from the future is refused');

SELECT * FROM finish();
ROLLBACK;
