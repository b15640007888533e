-- The store's own schema. Every pganalytics object lives here; `downgrade base` drops it.
CREATE SCHEMA pganalytics;
COMMENT ON SCHEMA pganalytics IS 'pganalytics store: samples, query statistics, analytics and the api surface';
