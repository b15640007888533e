-- Users' verdicts on diagnosed causes (record_root_cause_feedback(); the API later): the
-- window diagnosed, the cause, confirmed or rejected, and the evidence features diagnose()
-- computed for the window when the verdict was given (stored, because the raw data they came
-- from is dropped by retention long before a model stops learning from them).
--   features  flat object, feature name -> number (diagnosis_features()'s "features")
CREATE TABLE pganalytics.root_cause_feedback (
    instance_id  int         NOT NULL,
    feedback_id  bigint      NOT NULL,
    window_from  timestamptz NOT NULL,
    window_to    timestamptz NOT NULL,
    cause        text        NOT NULL CONSTRAINT root_cause_feedback_cause_format CHECK (cause ~ '^[a-z][a-z0-9_]*$'),
    confirmed    boolean     NOT NULL,
    features     jsonb       NOT NULL CONSTRAINT root_cause_feedback_features_object CHECK (jsonb_typeof(features) = 'object'),
    note         text,
    noted_by     text        NOT NULL DEFAULT current_user,
    noted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, feedback_id),
    CONSTRAINT root_cause_feedback_window CHECK (window_to > window_from)
);
CREATE SEQUENCE pganalytics.root_cause_feedback_id_seq AS bigint OWNED BY pganalytics.root_cause_feedback.feedback_id;
ALTER TABLE pganalytics.root_cause_feedback ALTER COLUMN feedback_id SET DEFAULT pg_catalog.nextval('pganalytics.root_cause_feedback_id_seq'::regclass);
GRANT SELECT ON pganalytics.root_cause_feedback TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.root_cause_feedback;
