-- Feature vectors computed by features() (kind 'series', subject_id = series_id) and
-- query_features() (kind 'query', subject_id = queryid), one row per subject and lookback.
-- A row is reused while it is younger than the setting features.ttl (5 minutes) AND data_until
-- still equals the subject's newest data (a series: the newest frame of a layout holding it;
-- a query: its newest delta), so new samples of that subject invalidate it at once and other
-- subjects' samples do not. Written only by those SECURITY DEFINER functions (admins read it).
-- Keyed by instance_id first and without a foreign key, like every per-instance table, so a
-- distributed store shards it with the instance's other rows. Rows are rewritten in place on
-- every recomputation (only non-key columns change): fillfactor leaves room for HOT updates.
CREATE TABLE pganalytics.feature_cache (
    instance_id      int         NOT NULL,
    kind             text        NOT NULL CONSTRAINT feature_cache_kind CHECK (kind IN ('series', 'query')),
    subject_id       bigint      NOT NULL,
    lookback         interval    NOT NULL,
    computed_at      timestamptz NOT NULL,
    data_until       timestamptz,  -- the subject's newest sample time when computed (NULL: none)
    resolution       text,         -- what read_series() read at; NULL for a query, or when nothing was read
    points           int         NOT NULL,
    mean             float8,
    stddev           float8,
    p95              float8,
    moving_avg_5m    float8,
    moving_stddev_5m float8,
    rate_of_change   float8,
    trend            text        CONSTRAINT feature_cache_trend CHECK (trend IN ('up', 'down', 'flat')),
    slope            float8,
    volatility       float8,
    PRIMARY KEY (instance_id, kind, subject_id, lookback)
) WITH (fillfactor = 70);
GRANT SELECT ON pganalytics.feature_cache TO pganalytics_admin;
INSERT INTO pganalytics.store_settings (name, kind, value, description) VALUES
    ('features.ttl', 'interval', '5 minutes',
     'how long features() and query_features() reuse a cached feature vector whose series or query got no new samples (0: always recompute)');
-- downgrade: DELETE FROM pganalytics.store_settings WHERE name = 'features.ttl';
-- downgrade: DROP TABLE pganalytics.feature_cache;
