-- The collector writes samples only through ingest_samples(), which records each batch in the
-- snapshot ledger first: a raw INSERT would bypass the ledger (and its idempotency).
REVOKE INSERT ON pganalytics.samples FROM pganalytics_collector;
-- downgrade: GRANT INSERT ON pganalytics.samples TO pganalytics_collector;
