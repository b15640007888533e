-- One row per time series: a metric name plus labels (e.g. {"datname": "app"}).
-- Samples refer to series_id so a sample row stays 24 bytes of payload.
CREATE TABLE pganalytics.series (
    instance_id int  NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    series_id   int  GENERATED ALWAYS AS IDENTITY,
    metric      text NOT NULL CONSTRAINT series_metric_format CHECK (metric ~ '^[a-z][a-z0-9_]*$'),
    labels      jsonb NOT NULL DEFAULT '{}' CONSTRAINT series_labels_object CHECK (jsonb_typeof(labels) = 'object'),
    kind        text NOT NULL DEFAULT 'gauge' CONSTRAINT series_kind CHECK (kind IN ('gauge', 'counter')),
    PRIMARY KEY (instance_id, series_id),
    UNIQUE (instance_id, metric, labels)
);
