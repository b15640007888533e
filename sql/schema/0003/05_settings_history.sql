-- Non-default server settings over time (one row per value while it held): "what changed
-- just before it got slow" is a root-cause question. valid_to NULL = current value.
-- downgrade: DROP TABLE pganalytics.settings_history;
CREATE TABLE pganalytics.settings_history (
    instance_id     int         NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    name            text        NOT NULL,
    setting         text,
    unit            text,
    source          text,
    pending_restart boolean     NOT NULL DEFAULT false,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    PRIMARY KEY (instance_id, name, valid_from)
);
CREATE UNIQUE INDEX settings_history_current ON pganalytics.settings_history (instance_id, name)
    WHERE valid_to IS NULL;
GRANT SELECT ON pganalytics.settings_history TO pganalytics_admin;
