-- Anomaly events: one row per episode of one derived metric (anomaly_types: its type; subject:
-- what it is about, '' for the instance, 'datname:app', 'queryid:123', ...), not one per
-- anomalous point. Written only by record_anomalies() (the live path in maintain() each minute,
-- detect_anomalies() on demand), which opens an event at the first anomalous point, extends it
-- and closes it once the metric is back. Keyed by instance_id first, like every instance table,
-- so a distributed store shards it with the instance's other rows (every unique key holds it).
--   started_at   the first anomalous 1-minute bucket
--   ended_at     the first bucket of the run of buckets back to normal that closed it; NULL
--                while the episode goes on
--   last_at      the newest bucket the event has taken into account: a point at or before it
--                was already counted, so recording the same (or overlapping) points again
--                changes nothing
--   last_away_at the newest bucket still away from normal; back_since/back_points: the run of
--                buckets back to normal since then (the event closes at a few in a row)
--   peak_*       the bucket furthest from expected in the bad direction: actual, expected, score
--   severity     the highest score of the episode, in [0, 1]
--   description  one sentence for people, rewritten as the event changes
-- The sequence (not an identity column: Citus refuses those) only names events.
CREATE TABLE pganalytics.anomalies (
    instance_id   int         NOT NULL,
    anomaly_id    bigint      NOT NULL,
    anomaly_type  text        NOT NULL CONSTRAINT anomalies_type_format CHECK (anomaly_type ~ '^[a-z][a-z0-9_]*$'),
    subject       text        NOT NULL DEFAULT '',
    source        text        NOT NULL CONSTRAINT anomalies_source_format CHECK (source ~ '^[a-z][a-z0-9_]*$'),
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    last_at       timestamptz NOT NULL,
    last_away_at  timestamptz NOT NULL,
    back_since    timestamptz,
    back_points   int         NOT NULL DEFAULT 0,
    points        int         NOT NULL CONSTRAINT anomalies_points_positive CHECK (points > 0),
    peak_at       timestamptz NOT NULL,
    peak_value    float8      NOT NULL,
    peak_expected float8,
    peak_score    float8      NOT NULL,
    severity      float8      NOT NULL CONSTRAINT anomalies_severity_range CHECK (severity >= 0 AND severity <= 1),
    description   text        NOT NULL,
    context       jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, anomaly_id),
    -- Idempotency: an episode of one series is known by where it starts.
    CONSTRAINT anomalies_episode UNIQUE (instance_id, anomaly_type, subject, started_at),
    CONSTRAINT anomalies_order CHECK (started_at <= peak_at AND peak_at <= last_away_at
                                      AND last_away_at <= last_at
                                      AND (ended_at IS NULL OR ended_at > last_away_at))
);
CREATE SEQUENCE pganalytics.anomalies_anomaly_id_seq AS bigint OWNED BY pganalytics.anomalies.anomaly_id;
ALTER TABLE pganalytics.anomalies ALTER COLUMN anomaly_id SET DEFAULT pg_catalog.nextval('pganalytics.anomalies_anomaly_id_seq'::regclass);
-- The live path looks up the open event of each series it scores, every minute: a small
-- partial index (closed events are most of the table and never looked up this way). Not
-- unique: while detect_anomalies() back-fills an older episode of a series that has a newer
-- open one, both are open for a moment; record_anomalies() merges or closes the older one
-- before it returns (and calls for one instance take turns), so at most one stays open.
CREATE INDEX anomalies_open ON pganalytics.anomalies (instance_id, anomaly_type, subject) WHERE ended_at IS NULL;
-- detect_anomalies() and people read an instance's events of a period.
CREATE INDEX anomalies_instance_started ON pganalytics.anomalies (instance_id, started_at);
GRANT SELECT ON pganalytics.anomalies TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.anomalies;
