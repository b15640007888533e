-- Databases seen on each instance (datid is only unique within an instance).
CREATE TABLE pganalytics.databases (
    instance_id   int  NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    datid         oid  NOT NULL,
    datname       text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, datid)
);
