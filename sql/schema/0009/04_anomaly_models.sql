-- Trained anomaly models, versioned per instance (train_anomaly_model()): for each (type,
-- subject) key, an hour-of-week profile fitted on weeks of history, a threshold, a weight per
-- detector, and the detector's state after replaying that history with the profile (the live
-- path starts from it when the model is new). The live path and detect_anomalies() use an instance's newest version; older
-- versions stay for comparison until deleted. Arrays are float8s as bytes (big-endian), row i
-- for keys[i]. digest is a hash of the data and options trained on: the same data trains the
-- same model (same digest, same parameters), and training again on it adds no version.
CREATE TABLE pganalytics.anomaly_models (
    instance_id   int         NOT NULL,
    version       int         NOT NULL,
    trained_at    timestamptz NOT NULL DEFAULT now(),
    data_from     timestamptz NOT NULL,
    data_to       timestamptz NOT NULL,
    keys          text[]      NOT NULL,
    week_profile  bytea       NOT NULL,  -- keys x 168 offsets from the level (NaN: not fitted)
    thresholds    bytea       NOT NULL,  -- keys thresholds
    weights       bytea       NOT NULL,  -- keys x detectors weights in [0.5, 1]
    warm_state    bytea       NOT NULL,  -- keys x the detector's hot state after replaying the history
    detectors     text[]      NOT NULL,  -- the detectors' order in weights
    summary       jsonb       NOT NULL,  -- what was fitted, per key (points, peak hours, alerts before/after)
    digest        text        NOT NULL,
    PRIMARY KEY (instance_id, version),
    CONSTRAINT anomaly_models_span CHECK (data_to > data_from)
);
GRANT SELECT ON pganalytics.anomaly_models TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.anomaly_models;
