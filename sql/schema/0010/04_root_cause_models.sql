-- Trained root-cause models (train_root_cause_model()), fleet-wide: learnt from every
-- instance's feedback, since causes look alike across servers and one instance rarely has
-- enough labelled incidents. diagnose() blends the newest one with its rules. The model is
-- JSON (feature names, scaling, per-cause weights) so a person can read what it learnt.
--   evaluation  held-out accuracy of the rules alone and of rules + model, and the counts
--   digest      hash of the feedback rows and options: the same data adds no new version
CREATE TABLE pganalytics.root_cause_models (
    version      int         PRIMARY KEY,
    trained_at   timestamptz NOT NULL DEFAULT now(),
    examples     int         NOT NULL CONSTRAINT root_cause_models_examples CHECK (examples > 0),
    model        jsonb       NOT NULL CONSTRAINT root_cause_models_model_object CHECK (jsonb_typeof(model) = 'object'),
    evaluation   jsonb       NOT NULL DEFAULT '{}',
    digest       text        NOT NULL UNIQUE
);
GRANT SELECT ON pganalytics.root_cause_models TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.root_cause_models;
