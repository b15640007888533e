-- Settings of the store itself (retention per resolution, rollup timing), changed with plain
-- UPDATE by an admin; each value is checked against its kind on write, so maintain() never
-- meets a value it cannot read.
CREATE TABLE pganalytics.store_settings (
    name        text PRIMARY KEY,
    kind        text NOT NULL CONSTRAINT store_settings_kind CHECK (kind IN ('interval', 'fraction')),
    value       text NOT NULL,
    description text NOT NULL,
    CONSTRAINT store_settings_value CHECK (CASE kind
        WHEN 'interval' THEN value::interval >= interval '0'
        WHEN 'fraction' THEN value::float8 > 0 AND value::float8 <= 1 END)
);
INSERT INTO pganalytics.store_settings (name, kind, value, description) VALUES
    ('retention.raw',        'interval', '2 days',   'raw sample frames and the delivery ledger'),
    ('retention.1m',         'interval', '14 days',  '1-minute rollups'),
    ('retention.5m',         'interval', '35 days',  '5-minute rollups'),
    ('retention.15m',        'interval', '90 days',  '15-minute rollups'),
    ('retention.1h',         'interval', '400 days', '1-hour rollups'),
    ('retention.events',     'interval', '14 days',  'query statistics deltas and wait-event samples'),
    ('rollup.settle',        'interval', '1 minute', 'how long after a minute ends (in the instance''s own sample time) it is first rolled up, so slower sources of the same cycle arrive first'),
    ('rollup.grace',         'interval', '1 day',    'frames arriving after their minute was rolled up are folded in when no older than this; older ones are kept raw only'),
    ('rollup.max_catchup',   'interval', '1 hour',   'the most sample time one maintain() call rolls up per instance (a backlog takes several calls)'),
    ('state.ewma_alpha',     'fraction', '0.1',      'weight of the newest minute in the per-series EWMA');
GRANT SELECT ON pganalytics.store_settings TO pganalytics_admin;
GRANT UPDATE (value) ON pganalytics.store_settings TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.store_settings;
