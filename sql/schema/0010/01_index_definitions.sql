-- The indexes of each monitored database over time (the collector's catalog snapshot at its
-- slow cadence): one row per definition while it held, valid_to NULL while it still exists.
-- pg_stat_user_indexes only lists what exists now; "the index the query used was dropped at
-- 10:02" and "these two indexes have the same leading columns" need the history and the
-- definitions. Keyed by instance_id first, like every instance table.
--   columns  key columns in order (an expression as its text), INCLUDE columns left out
CREATE TABLE pganalytics.index_definitions (
    instance_id  int         NOT NULL,
    datname      text        NOT NULL,
    schemaname   text        NOT NULL,
    relname      text        NOT NULL,
    indexrelname text        NOT NULL,
    indexdef     text        NOT NULL,
    columns      text[]      NOT NULL,
    is_unique    boolean     NOT NULL,
    is_primary   boolean     NOT NULL,
    is_valid     boolean     NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    PRIMARY KEY (instance_id, datname, schemaname, indexrelname, valid_from),
    CONSTRAINT index_definitions_span CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX index_definitions_current
    ON pganalytics.index_definitions (instance_id, datname, schemaname, indexrelname) WHERE valid_to IS NULL;
GRANT SELECT ON pganalytics.index_definitions TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.index_definitions;
