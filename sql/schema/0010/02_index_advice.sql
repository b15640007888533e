-- Indexes the collector proposes for an expensive query's generic plan (a sequential scan with
-- a selective filter), with the planner's cost of the query without and with the index as a
-- hypothetical one (hypopg on the target: nothing is built). The store cannot plan a target's
-- query, so the check happens on the target, at capture time.
--   create_statement  the CREATE INDEX CONCURRENTLY to run, names quoted
--   cost_before/after the generic plan's total cost; cost_after NULL when not checked
--   verified_with     'hypopg' when checked with a hypothetical index; NULL when the target has
--                     no hypopg (the proposal stands on the plan alone)
CREATE TABLE pganalytics.index_advice (
    instance_id      int         NOT NULL,
    collected_at     timestamptz NOT NULL,
    datname          text        NOT NULL,
    queryid          bigint      NOT NULL,
    schemaname       text        NOT NULL,
    relname          text        NOT NULL,
    columns          text[]      NOT NULL,
    create_statement text        NOT NULL,
    cost_before      float8      NOT NULL,
    cost_after       float8,
    verified_with    text        CONSTRAINT index_advice_verified CHECK (verified_with IN ('hypopg')),
    PRIMARY KEY (instance_id, collected_at, datname, queryid, create_statement),
    CONSTRAINT index_advice_checked CHECK ((verified_with IS NULL) = (cost_after IS NULL))
);
CREATE INDEX index_advice_query ON pganalytics.index_advice (instance_id, queryid, collected_at);
GRANT SELECT ON pganalytics.index_advice TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.index_advice;
