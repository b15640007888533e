-- Normalised query text, stored once per (instance, queryid): texts are large and never change.
CREATE TABLE pganalytics.query_texts (
    instance_id   int    NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    queryid       bigint NOT NULL,
    query         text   NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, queryid)
);
